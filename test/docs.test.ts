/**
 * The API reference is complete: TypeDoc, run with the repository's typedoc.json, reads the
 * public API from src/index.ts, and every exported declaration has a comment, and every exported
 * function and class an `@example`. Failures list the offenders by name.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeDir, tempDir } from './support/fixtures';

const ROOT = path.join(__dirname, '..');
const TYPEDOC = path.join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc');
const TIMEOUT = 3 * 60_000;

// TypeDoc's JSON output, the parts read here

/** TypeDoc's `ReflectionKind` values (typedoc/dist/types/models/kind.d.ts). */
const KIND = {
  Module: 2,
  Namespace: 4,
  Enum: 8,
  Variable: 32,
  Function: 64,
  Class: 128,
  Interface: 256,
  TypeAlias: 2097152,
  Reference: 4194304,
} as const;

const KIND_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(KIND).map(([name, kind]) => [kind, name]));

interface CommentPart {
  readonly kind: string;
  readonly text: string;
}

interface Comment {
  readonly summary: readonly CommentPart[];
  readonly blockTags?: ReadonlyArray<{ readonly tag: string; readonly content: readonly CommentPart[] }>;
}

interface Reflection {
  readonly name: string;
  readonly kind: number;
  readonly comment?: Comment;
  readonly signatures?: ReadonlyArray<{ readonly comment?: Comment }>;
  readonly children?: readonly Reflection[];
}

// what the API offers

/** An exported declaration, with the name users import it by (`Namespace.member` inside namespaces). */
interface Export {
  readonly name: string;
  readonly kind: string;
  readonly reflection: Reflection;
}

const DECLARATION_KINDS: ReadonlySet<number> = new Set([KIND.Enum, KIND.Variable, KIND.Function, KIND.Class, KIND.Interface, KIND.TypeAlias]);

/** The declarations reachable from the entry point, namespaces included. Re-exports under another name are the same declaration. */
const exportsOf = (container: Reflection, prefix = ''): Export[] =>
  (container.children ?? []).flatMap((child) => {
    const name = `${prefix}${child.name}`;
    if (child.kind === KIND.Namespace || child.kind === KIND.Module) return exportsOf(child, `${name}.`);
    return DECLARATION_KINDS.has(child.kind) ? [{ name, kind: KIND_NAMES.get(child.kind) ?? String(child.kind), reflection: child }] : [];
  });

/** The comments of a declaration: its own, and those of its call signatures (where a function's comment lives). */
const commentsOf = (r: Reflection): Comment[] => [r.comment, ...(r.signatures ?? []).map((s) => s.comment)].filter((c): c is Comment => c !== undefined);

const hasText = (c: Comment): boolean => c.summary.some((p) => p.text.trim() !== '') || (c.blockTags ?? []).length > 0;

const documented = (r: Reflection): boolean => commentsOf(r).some(hasText);

const hasExample = (r: Reflection): boolean =>
  commentsOf(r).some((c) => (c.blockTags ?? []).some((t) => t.tag === '@example' && t.content.some((p) => p.text.trim() !== '')));

const describeOffenders = (what: string, offenders: readonly Export[]): string =>
  `${offenders.length} exported declaration(s) ${what}:\n${offenders.map((e) => `  - ${e.name} (${e.kind})`).join('\n')}`;

// TypeDoc, run once

let work: string;
let exported: Export[];
let log: string;

beforeAll(async () => {
  work = tempDir('stepcache-docs-');
  const json = path.join(work, 'api.json');
  // `--out` keeps the HTML of this run out of the repository's docs/api.
  const args = [TYPEDOC, '--json', json, '--out', path.join(work, 'html'), '--logLevel', 'Warn'];
  const outcome = await new Promise<{ code: number | null; output: string }>((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: TIMEOUT, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, output: `${stdout}${stderr}` }),
    );
  });
  log = outcome.output.replace(/\x1b\[[0-9;]*m/g, ''); // eslint-disable-line no-control-regex
  if (outcome.code !== 0 || !fs.existsSync(json)) throw new Error(`typedoc exited with ${String(outcome.code)}:\n${log}`);
  exported = exportsOf(JSON.parse(fs.readFileSync(json, 'utf8')) as Reflection);
}, TIMEOUT);

afterAll(() => {
  if (work !== undefined) removeDir(work);
});

// tests

describe('the API reference', () => {
  it('covers the public API of src/index.ts', () => {
    const names = exported.map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['step', 'pipeline', 'createRunner', 'StepcacheError', 'Step', 'Pipeline', 'Runner', 'RunRecord']));
  });

  it('has a comment for every exported declaration', () => {
    const offenders = exported.filter((e) => !documented(e.reflection));
    if (offenders.length > 0) throw new Error(describeOffenders('without a doc comment', offenders));
  });

  it('has an @example for every exported function and class', () => {
    const offenders = exported.filter((e) => (e.reflection.kind === KIND.Function || e.reflection.kind === KIND.Class) && !hasExample(e.reflection));
    if (offenders.length > 0) throw new Error(describeOffenders('without an @example', offenders));
  });

  it('draws no "not documented" warning from TypeDoc (what `npm run docs` reports)', () => {
    const warnings = log.split('\n').filter((l) => l.includes('does not have any documentation'));
    if (warnings.length > 0) throw new Error(`TypeDoc reports ${warnings.length} undocumented declaration(s):\n${warnings.join('\n')}`);
  });
});

describe("the README's folder map", () => {
  /** The folders the map names: the first cell of each row of the table under "Folder map". */
  const mapped = (): string[] => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.split(/^### Folder map$/m)[1]?.split(/^#{2,3} /m)[0] ?? '';
    return [...section.matchAll(/^\| `([^`]+)\/` \|/gm)].map((m) => m[1] as string).sort();
  };
  const foldersIn = (dir: string): string[] =>
    fs
      .readdirSync(path.join(ROOT, dir), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => `${dir}/${e.name}`);

  it('names every folder of src/ and test/ and the top-level folders, one line each', () => {
    const tree = ['src', 'test', 'examples', 'bench', '.ci', ...foldersIn('src'), ...foldersIn('test'), 'test/support/provision'];
    expect(mapped().filter((f) => !tree.includes(f) && !fs.existsSync(path.join(ROOT, f)))).toEqual([]);
    expect(tree.filter((f) => !mapped().includes(f)).sort()).toEqual([]);
  });
});
