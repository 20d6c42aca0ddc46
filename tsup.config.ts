import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { defineConfig } from 'tsup';

/**
 * The ES module entry: the CommonJS build, loaded with `require` and re-exported name by name.
 * One build serves both `import` and `require`, so both share one module instance (one
 * `StepcacheError` class, one hasher, one fingerprint cache), and importing costs what requiring
 * does: a separate ESM build loaded its CommonJS dependencies (fp-ts, io-ts) through Node's
 * ESM-to-CommonJS translation and took about twice as long. The names are listed (rather than
 * `export * from './index.js'`) so that Node need not scan the CommonJS file for them.
 */
const esmEntry = (names: readonly string[]): string =>
  [
    "// stepcache's ES module entry: the CommonJS build, re-exported.",
    "import { createRequire } from 'node:module';",
    "const stepcache = createRequire(import.meta.url)('./index.js');",
    `export const { ${names.join(', ')} } = stepcache;`,
    '',
  ].join('\n');

/**
 * The published build: CommonJS (`.js` + `.d.ts`) of the library and of the command line, for
 * Node 20 and later, plus the ES module entry (`index.mjs`, and `index.d.mts`: the same declarations).
 * Dependencies stay external (tsup's default).
 */
export default defineConfig((options) => ({
  entry: {
    index: 'src/index.ts',
    'cli/main': 'src/cli/main.ts',
  },
  format: ['cjs', 'esm'],
  target: 'node20',
  platform: 'node',
  tsconfig: 'tsconfig.build.json',
  dts: true,
  sourcemap: true,
  clean: true,
  // `import.meta.url` in CommonJS.
  shims: true,
  // Keep `node:fs` as written: every supported Node version understands it.
  removeNodeProtocol: false,
  // Each entry is one self-contained file.
  splitting: false,
  // tslab is no dependency: it exists only inside a tslab notebook kernel, where it is found at run time.
  external: ['tslab'],
  // The ES module build is made only for its declarations (`index.d.mts`, written later by the
  // declaration build); its code is replaced by the ES module entry.
  // The folder is the one the build writes to: `dist`, or what `--out-dir` says.
  onSuccess: async () => {
    const dist = path.resolve(__dirname, options.outDir ?? 'dist');
    // Read in a process of its own, whose dependencies resolve from this package wherever the build went.
    const listed = execFileSync(process.execPath, ['-e', `process.stdout.write(JSON.stringify(Object.keys(require(${JSON.stringify(path.join(dist, 'index.js'))}))))`], {
      env: { ...process.env, NODE_PATH: path.join(__dirname, 'node_modules') },
      encoding: 'utf8',
    });
    const names = (JSON.parse(listed) as string[]).filter((name) => name !== '__esModule');
    fs.writeFileSync(path.join(dist, 'index.mjs'), esmEntry(names));
    for (const stale of ['index.mjs.map', 'cli/main.mjs', 'cli/main.mjs.map']) fs.rmSync(path.join(dist, stale), { force: true });
  },
}));
