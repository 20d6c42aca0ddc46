import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { defineConfig, type Options } from 'tsup';

type TsupPlugin = NonNullable<Options['plugins']>[number];

const projectRequire = createRequire(path.join(__dirname, 'package.json'));

/** Whether the installed package `name` declares an `exports` map. */
const hasExportsMap = (name: string): boolean => {
  try {
    const manifest: unknown = JSON.parse(fs.readFileSync(projectRequire.resolve(`${name}/package.json`), 'utf8'));
    return typeof manifest === 'object' && manifest !== null && 'exports' in manifest;
  } catch {
    return true; // the package hides its package.json behind an exports map
  }
};

/**
 * The specifier an ES module must use for the file `require(specifier)` loads, or `undefined`
 * when the original specifier already works from ESM.
 *
 * The source imports subpaths such as `fp-ts/Either` and `elkjs/lib/elk-api`, which CommonJS
 * resolves (a directory with its own package.json, an omitted `.js`) and Node's ESM resolver
 * refuses. For a package without an `exports` map, the fully specified path of the very file
 * CommonJS loads (`fp-ts/lib/Either.js`) works in both, and both builds share one module instance.
 */
const esmSpecifier = (specifier: string): string | undefined => {
  const match = /^((?:@[^/]+\/)?[^/@.][^/]*)\/(.+)$/.exec(specifier);
  if (match === null) return undefined;
  const [, name = '', subpath = ''] = match;
  if (/\.(?:c|m)?js$/.test(subpath) || hasExportsMap(name)) return undefined;
  let resolved: string;
  try {
    resolved = projectRequire.resolve(specifier);
  } catch {
    return undefined;
  }
  const root = `${path.sep}node_modules${path.sep}${name.split('/').join(path.sep)}${path.sep}`;
  const at = resolved.lastIndexOf(root);
  if (at < 0) return undefined;
  return `${name}/${resolved.slice(at + root.length).split(path.sep).join('/')}`;
};

/** Rewrites, in the ESM build only, bare subpath imports that Node's ESM resolver would refuse. */
const fullySpecifiedImports: TsupPlugin = {
  name: 'fully-specified-imports',
  renderChunk(code) {
    if (this.format !== 'esm') return undefined;
    const rewritten = code.replace(/(\bfrom\s*|\bimport\s*\(\s*|\bimport\s*)(["'])([^"'\n]+)\2/g, (whole, lead: string, quote: string, specifier: string) => {
      const replacement = esmSpecifier(specifier);
      return replacement === undefined ? whole : `${lead}${quote}${replacement}${quote}`;
    });
    return rewritten === code ? undefined : { code: rewritten };
  },
};

/**
 * The published build: ESM (`.mjs` + `.d.mts`) and CommonJS (`.js` + `.d.ts`) of the library and
 * of the command line, for Node 20 and later. Dependencies stay external (tsup's default).
 */
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'cli/main': 'src/cli/main.ts',
  },
  format: ['esm', 'cjs'],
  target: 'node20',
  platform: 'node',
  tsconfig: 'tsconfig.build.json',
  dts: true,
  sourcemap: true,
  clean: true,
  // `__dirname` and `__filename` in ESM, `import.meta.url` in CommonJS.
  shims: true,
  // Keep `node:fs` as written: every supported Node version understands it.
  removeNodeProtocol: false,
  // Each entry is one self-contained file in both formats.
  splitting: false,
  // tslab is no dependency: it exists only inside a tslab notebook kernel, where it is found at run time.
  external: ['tslab'],
  banner: ({ format }) =>
    format === 'esm'
      ? {
          // The source loads some modules lazily with `require` (the TypeScript compiler for code
          // fingerprints, tslab in notebooks). ESM has no `require`: give each module its own.
          js: "import { createRequire as __stepcacheCreateRequire } from 'node:module';\nconst require = __stepcacheCreateRequire(import.meta.url);",
        }
      : {},
  plugins: [fullySpecifiedImports],
});
