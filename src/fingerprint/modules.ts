/**
 * Modules: each source file parsed once (per path, modification time and size) into an index of
 * its module-level declarations, imports and exports; import specifiers resolved to files,
 * packages and built-ins.
 *
 * @packageDocumentation
 * @internal
 */
import * as fs from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as TS from 'typescript';
import { contentDigest, listFiles, loadedSource, noteObserved, sourceOfRunningFile, trackConsultedFiles, type LoadedSource } from './observed';
import { bindingNames, canonicalText, declarationKeyword, freeNames, hoistedVarNames, isCodeExpression, isFunctionWithBody, isReference, isTypeOnly, scopeDeclarations, typescript, unwrap, type FreeNames, type NameUse } from './syntax';

// model

/**
 * The kind of a module-level declaration.
 *
 * @internal
 * @example
 * const kind: DeclarationKind = 'function';
 */
export type DeclarationKind = 'function' | 'variable' | 'class' | 'enum';

/**
 * A module-level declaration: every statement that declares its names (a `var` may be declared
 * twice, a function and a namespace may merge), plus the top-level statements that change it
 * (`CONFIG.x = 2`, `Object.assign(CONFIG, …)`, `REGISTRY.push(…)`).
 *
 * @internal
 * @example
 * const d: Declaration = index.bindings.get('normalize')!.declaration;
 */
export interface Declaration {
  readonly module: ModuleIndex;
  names: string[];
  kind: DeclarationKind;
  readonly nodes: TS.Node[];
  readonly attached: TS.Node[];
  /** Cached canonical text and free names, and the text's digest per hash function. */
  text?: string;
  free?: FreeNames;
  readonly digests: WeakMap<object, string>;
}

/**
 * What a module-level name is bound to.
 *
 * @internal
 * @example
 * const b: Binding = { _tag: 'Import', specifier: './helpers', imported: 'normalize' };
 */
export type Binding =
  | { readonly _tag: 'Local'; readonly declaration: Declaration }
  | { readonly _tag: 'Import'; readonly specifier: string; readonly imported: string };

/**
 * What an exported name refers to. `imported` is `'*'` for the module as a whole.
 *
 * @internal
 * @example
 * const e: ExportTarget = { _tag: 'Reexport', specifier: './impl', imported: 'normalize' };
 */
export type ExportTarget =
  | { readonly _tag: 'Local'; readonly name: string }
  | { readonly _tag: 'Reexport'; readonly specifier: string; readonly imported: string }
  | { readonly _tag: 'Declaration'; readonly declaration: Declaration };

/**
 * One parsed source file.
 *
 * @internal
 * @example
 * const index = loadModule('/project/helpers.ts');
 * index?.bindings.has('normalize');
 */
export interface ModuleIndex {
  readonly file: string;
  readonly sourceFile: TS.SourceFile;
  readonly bindings: ReadonlyMap<string, Binding>;
  readonly exports: ReadonlyMap<string, ExportTarget>;
  readonly starExports: readonly string[];
  /** Modules imported for their side effects only (`import './overrides'`, a top-level `require('./setup');`). */
  readonly sideEffectImports: readonly string[];
  readonly declarations: readonly Declaration[];
  /** Cached canonical text of the whole file, and its digest per hash function. */
  wholeText?: string;
  readonly digests: WeakMap<object, string>;
}

// files

const SCRIPT_EXTENSIONS = ['.ts', '.tsx', '.mts', '.cts', '.js', '.jsx', '.mjs', '.cjs'];
const TS_FIRST = ['.ts', '.tsx', '.mts', '.cts', '.js', '.jsx', '.mjs', '.cjs', '.json'];
const JS_FIRST = ['.js', '.jsx', '.mjs', '.cjs', '.ts', '.tsx', '.mts', '.cts', '.json'];

/**
 * Whether a file is JavaScript or TypeScript source (declaration files are not: they do not run).
 *
 * @internal
 * @example
 * isScript('/p/a.ts'); // true
 */
export const isScript = (file: string): boolean => SCRIPT_EXTENSIONS.includes(path.extname(file).toLowerCase()) && !/\.d\.[cm]?ts$/i.test(file);

const scriptKind = (file: string): TS.ScriptKind => {
  const K = typescript().ScriptKind;
  switch (path.extname(file).toLowerCase()) {
    case '.tsx':
      return K.TSX;
    case '.jsx':
      return K.JSX;
    case '.js':
    case '.mjs':
    case '.cjs':
      return K.JS;
    default:
      return K.TS;
  }
};

const statOf = (file: string): fs.Stats | undefined => {
  let stats: fs.Stats | undefined;
  try {
    const found = fs.statSync(file, { throwIfNoEntry: false });
    stats = found?.isFile() === true ? found : undefined;
  } catch {
    stats = undefined;
  }
  noteObserved(file, stats === undefined ? 'absent' : 'file');
  return stats;
};

/**
 * The file a relative (or absolute) specifier names, tried the way Node and TypeScript do:
 * as written, with each script extension, and as a directory's `index`; `./a.js` also finds
 * `./a.ts`. TypeScript extensions are tried first from a TypeScript file.
 *
 * @internal
 * @example
 * resolveFile('/p/pipeline.ts', './helpers'); // '/p/helpers.ts'
 */
export const resolveFile = (from: string, specifier: string): string | undefined => {
  let base: string;
  try {
    base = specifier.startsWith('file:') ? fileURLToPath(specifier) : path.resolve(path.dirname(from), specifier);
  } catch {
    return undefined;
  }
  const order = /\.[cm]?tsx?$/i.test(from) ? TS_FIRST : JS_FIRST;
  const candidates = [base, ...order.map((ext) => base + ext)];
  const js = /\.([cm]?)js(x?)$/i.exec(base);
  if (js !== null) candidates.push(`${base.slice(0, -js[0].length)}.${js[1] ?? ''}ts${js[2] ?? ''}`);
  candidates.push(...order.map((ext) => path.join(base, `index${ext}`)));
  return candidates.find((c) => statOf(c) !== undefined);
};

/** More files than this matching a computed import: it is warned about instead of fingerprinted. */
const MAX_PATTERN_FILES = 200;

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The files a computed import may load, when it is a template literal with a literal relative
 * directory (`` `./models/${kind}.mts` ``, its literal pieces `['./models/', '.mts']`): every file
 * under that directory (recursively, `node_modules` left out) whose path matches the pieces in
 * order. `undefined` when the template has no literal directory, or matches too many files.
 * The listing is observed, so a file added there changes what a kept fingerprint depends on.
 *
 * @internal
 * @example
 * filesMatching('/p/train.ts', ['./models/', '.mts']); // ['/p/models/svm.mts', '/p/models/knn.mts']
 */
export const filesMatching = (from: string, literals: readonly string[]): string[] | undefined => {
  const [head = '', ...rest] = literals;
  if (!head.startsWith('./') && !head.startsWith('../')) return undefined;
  const slash = head.lastIndexOf('/');
  const dir = path.resolve(path.dirname(from), head.slice(0, slash + 1));
  const pattern = new RegExp(`^${[head.slice(slash + 1), ...rest].map(escapeRegExp).join('.*')}$`, 's');
  const matching = listFiles(dir)
    .map((name) => name.split(path.sep).join('/'))
    .filter((name) => pattern.test(name))
    .map((name) => path.join(dir, name));
  return matching.length > MAX_PATTERN_FILES ? undefined : matching;
};

// resolving imports

/**
 * What an import specifier names, as the runtime resolves it: a source file of the project
 * (relative imports; tsconfig `paths`/`baseUrl` aliases; package.json `#imports`; packages linked
 * or in a workspace, whose real path is not in a `node_modules` folder), a Node built-in, an
 * installed npm package, or nothing found.
 *
 * @internal
 * @example
 * const r: ResolvedImport = { _tag: 'File', file: '/p/lib/features.ts' };
 */
export type ResolvedImport =
  | { readonly _tag: 'File'; readonly file: string }
  | { readonly _tag: 'Builtin'; readonly name: string }
  | { readonly _tag: 'Package'; readonly name: string }
  | { readonly _tag: 'Unresolved' };

interface ProjectConfig {
  readonly options: TS.CompilerOptions;
  readonly hasAliases: boolean;
}

const configs = new Map<string, { readonly files: ReadonlyMap<string, string>; readonly config: ProjectConfig | undefined }>();

/** The compiler options of the nearest tsconfig.json above `dir` (its `extends` followed), cached per directory. */
const projectConfig = (dir: string): ProjectConfig | undefined => {
  const cached = configs.get(dir);
  if (cached !== undefined) {
    for (const [file, state] of cached.files) noteObserved(file, state);
    return cached.config;
  }
  const { result, files } = trackConsultedFiles((): ProjectConfig | undefined => {
    for (let at = dir; ; at = path.dirname(at)) {
      const candidate = path.join(at, 'tsconfig.json');
      if (statOf(candidate) !== undefined) {
        const ts = typescript();
        try {
          noteObserved(candidate, `sha:${contentDigest(fs.readFileSync(candidate))}`);
        } catch {
          return undefined;
        }
        const host: TS.ParseConfigFileHost = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined };
        const parsed = ts.getParsedCommandLineOfConfigFile(candidate, {}, host);
        if (parsed === undefined) return undefined;
        const options = parsed.options;
        return { options, hasAliases: options.paths !== undefined || options.baseUrl !== undefined };
      }
      if (path.dirname(at) === at) return undefined;
    }
  });
  configs.set(dir, { files, config: result });
  return result;
};

/** Whether a resolved file is the project's own source: not in a `node_modules` folder, not a declaration file. */
const isProjectSource = (file: string): boolean => !file.split(/[\\/]/).includes('node_modules') && !/\.d\.[cm]?ts$/i.test(file);

const resolutions = new Map<string, { readonly files: ReadonlyMap<string, string>; readonly resolved: ResolvedImport }>();

/** A bare or `#` specifier: an alias of the project's, or a package, local (linked) or installed. */
const resolveBare = (from: string, specifier: string): ResolvedImport => {
  const ts = typescript();
  const config = projectConfig(path.dirname(from));
  const viaCompiler = (options: TS.CompilerOptions): string | undefined => {
    const found = ts.resolveModuleName(specifier, from, options, ts.sys).resolvedModule;
    return found !== undefined && !found.isExternalLibraryImport && isProjectSource(found.resolvedFileName) ? found.resolvedFileName : undefined;
  };
  if (config?.hasAliases === true) {
    const file = viaCompiler(config.options);
    if (file !== undefined) return { _tag: 'File', file };
  }
  if (specifier.startsWith('#')) {
    const file = viaCompiler({ ...(config?.options ?? {}), module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler });
    if (file !== undefined) return { _tag: 'File', file };
  }
  // As the runtime resolves it: a package whose real path is outside node_modules is source of the project (npm link, workspaces, file:).
  try {
    const runtime = fs.realpathSync(createRequire(from).resolve(specifier));
    if (isProjectSource(runtime) && path.isAbsolute(runtime)) return { _tag: 'File', file: sourceOfRunningFile(runtime) };
  } catch {
    // not resolvable from here (an ES-only package, or not installed): a package by name
  }
  return specifier.startsWith('#') ? { _tag: 'Unresolved' } : { _tag: 'Package', name: packageName(specifier) };
};

/**
 * Resolves an import specifier written in `from` (see {@link ResolvedImport}). Cached per
 * directory and specifier for the process, with what was consulted to resolve it.
 *
 * @internal
 * @example
 * resolveImport('/p/train.ts', '@/lib/features'); // { _tag: 'File', file: '/p/src/lib/features.ts' }
 */
export const resolveImport = (from: string, specifier: string): ResolvedImport => {
  const kind = specifierKind(specifier);
  if (kind === 'builtin') return { _tag: 'Builtin', name: specifier.replace(/^node:/, '') };
  if (kind === 'relative') {
    const file = resolveFile(from, specifier);
    return file === undefined ? { _tag: 'Unresolved' } : { _tag: 'File', file };
  }
  const key = `${path.dirname(from)}\0${specifier}`;
  const cached = resolutions.get(key);
  if (cached !== undefined) {
    for (const [file, state] of cached.files) noteObserved(file, state);
    return cached.resolved;
  }
  const { result, files } = trackConsultedFiles(() => resolveBare(from, specifier));
  resolutions.set(key, { files, resolved: result });
  return result;
};

/**
 * The project source file an import names, if it names one (see {@link resolveImport}).
 *
 * @internal
 * @example
 * localFile('/p/train.ts', './helpers'); // '/p/helpers.ts'
 */
export const localFile = (from: string, specifier: string): string | undefined => {
  const resolved = resolveImport(from, specifier);
  return resolved._tag === 'File' ? resolved.file : undefined;
};

/**
 * How an import specifier is resolved: a relative file, a Node built-in or an npm package.
 *
 * @internal
 * @example
 * specifierKind('node:fs'); // 'builtin'
 */
export const specifierKind = (specifier: string): 'relative' | 'builtin' | 'package' =>
  specifier.startsWith('.') || specifier.startsWith('file:') || path.isAbsolute(specifier) ? 'relative' : specifier.startsWith('node:') || (isBuiltin(specifier) && !specifier.startsWith('#')) ? 'builtin' : 'package';

/**
 * The package name of a bare specifier: `fp-ts/Either` is `fp-ts`, `@scope/a/b` is `@scope/a`.
 *
 * @internal
 * @example
 * packageName('@keyv/sqlite/dist'); // '@keyv/sqlite'
 */
export const packageName = (specifier: string): string => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

const readVersion = (packageJson: string, name: string | undefined): string | undefined => {
  try {
    const text = fs.readFileSync(packageJson, 'utf8');
    noteObserved(packageJson, `sha:${contentDigest(text)}`);
    const parsed = JSON.parse(text) as { name?: unknown; version?: unknown };
    if (name !== undefined && parsed.name !== name) return undefined;
    return typeof parsed.version === 'string' ? parsed.version : undefined;
  } catch {
    return undefined;
  }
};

const versions = new Map<string, { readonly version: string; readonly files: ReadonlyMap<string, string> }>();

/**
 * The installed version of package `name` as seen from `from`: the `version` of the package.json
 * that `require.resolve('<name>/package.json')` finds from that file, else the nearest
 * `node_modules/<name>/package.json` up the directories, else the package.json above the
 * package's resolved entry point, else the nearest package.json when it is that package's
 * (a package importing itself by name); `'unresolved'` when none is found. Cached for the process:
 * code already loaded keeps running its version even when another one is installed meanwhile.
 *
 * @internal
 * @example
 * packageVersion('/p/pipeline.ts', 'fp-ts'); // '2.16.11'
 */
export const packageVersion = (from: string, name: string): string => {
  const key = `${path.dirname(from)}\0${name}`;
  const cached = versions.get(key);
  if (cached !== undefined) {
    for (const [file, state] of cached.files) noteObserved(file, state);
    return cached.version;
  }
  const find = (): string | undefined => {
    const req = createRequire(from);
    try {
      const found = readVersion(req.resolve(`${name}/package.json`), undefined);
      if (found !== undefined) return found;
    } catch {
      // not exported, or not installed: look further
    }
    for (let dir = path.dirname(from); ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', name, 'package.json');
      if (statOf(candidate) !== undefined) return readVersion(candidate, undefined);
      if (path.dirname(dir) === dir) break;
    }
    try {
      for (let dir = path.dirname(req.resolve(name)); ; dir = path.dirname(dir)) {
        const version = readVersion(path.join(dir, 'package.json'), name);
        if (version !== undefined) return version;
        if (path.dirname(dir) === dir) break;
      }
    } catch {
      // not installed
    }
    // A package importing itself by name.
    for (let dir = path.dirname(from); ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'package.json');
      if (statOf(candidate) !== undefined) return readVersion(candidate, name);
      if (path.dirname(dir) === dir) return undefined;
    }
  };
  const { result, files } = trackConsultedFiles(find);
  const version = result ?? 'unresolved';
  versions.set(key, { version, files });
  return version;
};

const dataFiles = new Map<string, { readonly identity: string; readonly bytes: Uint8Array; readonly state: string; readonly digests: WeakMap<object, string> }>();

/**
 * The digest of a non-script file's bytes (a JSON module), cached per path and identity on disk (modification
 * and change times, size, inode).
 *
 * @internal
 * @example
 * dataDigest('/p/labels.json', hashKey);
 */
export const dataDigest = (file: string, hash: (bytes: Uint8Array) => string): string | undefined => {
  const stats = statOf(file);
  if (stats === undefined) return undefined;
  let entry = dataFiles.get(file);
  const identity = `${stats.mtimeMs}:${stats.ctimeMs}:${stats.size}:${stats.ino}`;
  if (entry === undefined || entry.identity !== identity) {
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(file);
    } catch {
      return undefined;
    }
    entry = { identity, bytes, state: `sha:${contentDigest(bytes)}`, digests: new WeakMap() };
    dataFiles.set(file, entry);
  }
  noteObserved(file, entry.state);
  let digest = entry.digests.get(hash);
  if (digest === undefined) {
    digest = hash(entry.bytes);
    entry.digests.set(hash, digest);
  }
  return digest;
};

// indexing

interface RequireCall {
  readonly specifier: string;
  readonly member: string | undefined;
}

/** `require('x')`, `require('x').y`, `await import('x')`, possibly parenthesised or cast. */
const requireCall = (expression: TS.Expression): RequireCall | undefined => {
  const ts = typescript();
  let e = unwrap(expression);
  if (ts.isAwaitExpression(e)) e = unwrap(e.expression);
  if (ts.isPropertyAccessExpression(e) && ts.isIdentifier(e.name)) {
    const inner = requireCall(e.expression);
    return inner !== undefined && inner.member === undefined ? { specifier: inner.specifier, member: e.name.text } : undefined;
  }
  if (!ts.isCallExpression(e) || e.arguments.length !== 1) return undefined;
  const [arg] = e.arguments;
  const callee = e.expression;
  const isLoader = (ts.isIdentifier(callee) && callee.text === 'require') || callee.kind === ts.SyntaxKind.ImportKeyword;
  return isLoader && arg !== undefined && ts.isStringLiteralLike(arg) ? { specifier: arg.text, member: undefined } : undefined;
};

const kindOfInitializer = (initializer: TS.Expression | undefined): DeclarationKind => {
  const ts = typescript();
  if (initializer === undefined || !isCodeExpression(initializer)) return 'variable';
  return ts.isClassExpression(unwrap(initializer)) ? 'class' : 'function';
};

/** `exports.x`, `module.exports.x`: the exported name; `module.exports`: `'='`. */
const commonJsExport = (target: TS.Expression): string | undefined => {
  const ts = typescript();
  const e = unwrap(target);
  const isModuleExports = (n: TS.Node): boolean =>
    ts.isPropertyAccessExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'module' && ts.isIdentifier(n.name) && n.name.text === 'exports';
  if (isModuleExports(e)) return '=';
  if (ts.isPropertyAccessExpression(e) && ts.isIdentifier(e.name)) {
    const object = unwrap(e.expression);
    if ((ts.isIdentifier(object) && object.text === 'exports') || isModuleExports(object)) return e.name.text;
  }
  return undefined;
};

/** The root name of `a.b[c].d`, `a`, `(a as T).b`. */
const rootName = (expression: TS.Node): string | undefined => {
  const ts = typescript();
  let e = unwrap(expression);
  while (ts.isPropertyAccessExpression(e) || ts.isElementAccessExpression(e)) e = unwrap(e.expression);
  return ts.isIdentifier(e) ? e.text : undefined;
};

const MUTATING_FUNCTIONS = new Set(['Object.assign', 'Object.defineProperty', 'Object.defineProperties', 'Object.setPrototypeOf', 'Reflect.set', 'Reflect.defineProperty']);

/** The module-level names a top-level statement may change: assignment targets, objects whose methods it calls, `Object.assign` targets. */
const mutatedNames = (statement: TS.Node): Set<string> => {
  const ts = typescript();
  const names = new Set<string>();
  const add = (n: TS.Node | undefined): void => {
    const name = n === undefined ? undefined : rootName(n);
    if (name !== undefined) names.add(name);
  };
  const visit = (n: TS.Node): void => {
    if (isFunctionWithBody(n) || ts.isClassLike(n)) return;
    if (ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment) add(n.left);
    else if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)) add(n.operand);
    else if (ts.isDeleteExpression(n)) add(n.expression);
    else if (ts.isCallExpression(n)) {
      const callee = unwrap(n.expression);
      if (ts.isPropertyAccessExpression(callee) || ts.isElementAccessExpression(callee)) {
        const text = ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) ? `${callee.expression.text}.${callee.name.text}` : '';
        if (MUTATING_FUNCTIONS.has(text)) add(n.arguments[0]);
        else add(callee.expression);
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(statement);
  return names;
};

const buildIndex = (file: string, text: string): ModuleIndex => {
  const ts = typescript();
  const sourceFile = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, scriptKind(file));
  const bindings = new Map<string, Binding>();
  const exports = new Map<string, ExportTarget>();
  const starExports: string[] = [];
  const sideEffectImports: string[] = [];
  const declarations: Declaration[] = [];
  const index: ModuleIndex = { file, sourceFile, bindings, exports, starExports, sideEffectImports, declarations, digests: new WeakMap() };
  const newDeclaration = (kind: DeclarationKind): Declaration => {
    const d: Declaration = { module: index, names: [], kind, nodes: [], attached: [], digests: new WeakMap() };
    declarations.push(d);
    return d;
  };
  /** Declares local names at a node, merging with earlier declarations of the same names. */
  const declare = (names: readonly string[], kind: DeclarationKind, node: TS.Node): void => {
    const existing = [...new Set(names.map((n) => bindings.get(n)).flatMap((b) => (b?._tag === 'Local' ? [b.declaration] : [])))];
    const target = existing[0] ?? newDeclaration(kind);
    for (const other of existing.slice(1)) {
      target.nodes.push(...other.nodes.filter((n) => !target.nodes.includes(n)));
      for (const n of other.names) if (!target.names.includes(n)) target.names.push(n);
      declarations.splice(declarations.indexOf(other), 1);
    }
    if (target.kind === 'variable') target.kind = kind;
    if (!target.nodes.includes(node)) target.nodes.push(node);
    for (const n of names) if (!target.names.includes(n)) target.names.push(n);
    for (const n of target.names) bindings.set(n, { _tag: 'Local', declaration: target });
  };
  const exportOnly = (name: string, kind: DeclarationKind, node: TS.Node): void => {
    const d = newDeclaration(kind);
    d.names.push(name);
    d.nodes.push(node);
    exports.set(name, { _tag: 'Declaration', declaration: d });
  };
  const isExported = (node: TS.Node): boolean => ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
  const isDefault = (node: TS.Node): boolean => ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.DefaultKeyword);
  const others: TS.Statement[] = [];

  for (const statement of sourceFile.statements) {
    if (isTypeOnly(statement)) continue;
    if (ts.isImportDeclaration(statement)) {
      const specifier = ts.isStringLiteralLike(statement.moduleSpecifier) ? statement.moduleSpecifier.text : undefined;
      const clause = statement.importClause;
      if (specifier !== undefined && clause === undefined) sideEffectImports.push(specifier);
      if (specifier === undefined || clause === undefined) continue;
      if (clause.name !== undefined) bindings.set(clause.name.text, { _tag: 'Import', specifier, imported: 'default' });
      const named = clause.namedBindings;
      if (named !== undefined && ts.isNamespaceImport(named)) bindings.set(named.name.text, { _tag: 'Import', specifier, imported: '*' });
      else if (named !== undefined) {
        for (const s of named.elements) if (!s.isTypeOnly) bindings.set(s.name.text, { _tag: 'Import', specifier, imported: (s.propertyName ?? s.name).text });
      }
    } else if (ts.isImportEqualsDeclaration(statement)) {
      const ref = statement.moduleReference;
      if (ts.isExternalModuleReference(ref) && ts.isStringLiteralLike(ref.expression)) bindings.set(statement.name.text, { _tag: 'Import', specifier: ref.expression.text, imported: '*' });
      else declare([statement.name.text], 'variable', statement);
    } else if (ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement)) {
      const kind = ts.isFunctionDeclaration(statement) ? 'function' : 'class';
      if (statement.name === undefined) {
        exportOnly('default', kind, statement);
        continue;
      }
      declare([statement.name.text], kind, statement);
      if (isExported(statement)) exports.set(isDefault(statement) ? 'default' : statement.name.text, { _tag: 'Local', name: statement.name.text });
    } else if (ts.isEnumDeclaration(statement)) {
      declare([statement.name.text], 'enum', statement);
      if (isExported(statement)) exports.set(statement.name.text, { _tag: 'Local', name: statement.name.text });
    } else if (ts.isModuleDeclaration(statement)) {
      if (!ts.isIdentifier(statement.name)) continue;
      declare([statement.name.text], 'variable', statement);
      if (isExported(statement)) exports.set(statement.name.text, { _tag: 'Local', name: statement.name.text });
    } else if (ts.isVariableStatement(statement)) {
      for (const d of statement.declarationList.declarations) {
        const loaded = d.initializer === undefined ? undefined : requireCall(d.initializer);
        const name = d.name;
        if (loaded !== undefined && ts.isIdentifier(name)) {
          bindings.set(name.text, { _tag: 'Import', specifier: loaded.specifier, imported: loaded.member ?? '*' });
        } else if (
          loaded !== undefined &&
          loaded.member === undefined &&
          ts.isObjectBindingPattern(name) &&
          name.elements.every((e) => ts.isIdentifier(e.name) && e.dotDotDotToken === undefined && e.initializer === undefined && (e.propertyName === undefined || ts.isIdentifier(e.propertyName)))
        ) {
          for (const e of name.elements) {
            const local = (e.name as TS.Identifier).text;
            bindings.set(local, { _tag: 'Import', specifier: loaded.specifier, imported: e.propertyName === undefined ? local : (e.propertyName as TS.Identifier).text });
          }
        } else {
          const names = bindingNames(name);
          declare(names, kindOfInitializer(d.initializer), d);
          if (isExported(statement)) for (const n of names) exports.set(n, { _tag: 'Local', name: n });
        }
      }
    } else if (ts.isExportDeclaration(statement)) {
      const specifier = statement.moduleSpecifier !== undefined && ts.isStringLiteralLike(statement.moduleSpecifier) ? statement.moduleSpecifier.text : undefined;
      const clause = statement.exportClause;
      if (clause === undefined) {
        if (specifier !== undefined) starExports.push(specifier);
      } else if (ts.isNamespaceExport(clause)) {
        if (specifier !== undefined) exports.set(clause.name.text, { _tag: 'Reexport', specifier, imported: '*' });
      } else {
        for (const s of clause.elements) {
          if (s.isTypeOnly) continue;
          const local = (s.propertyName ?? s.name).text;
          exports.set(s.name.text, specifier === undefined ? { _tag: 'Local', name: local } : { _tag: 'Reexport', specifier, imported: local });
        }
      }
    } else if (ts.isExportAssignment(statement)) {
      const e = unwrap(statement.expression);
      if (ts.isIdentifier(e)) exports.set('default', { _tag: 'Local', name: e.text });
      else exportOnly('default', kindOfInitializer(statement.expression), statement);
    } else {
      const assignment = ts.isExpressionStatement(statement) ? unwrap(statement.expression) : undefined;
      const exported = assignment !== undefined && ts.isBinaryExpression(assignment) && assignment.operatorToken.kind === ts.SyntaxKind.EqualsToken ? commonJsExport(assignment.left) : undefined;
      if (assignment !== undefined && ts.isBinaryExpression(assignment) && exported !== undefined) {
        const value = unwrap(assignment.right);
        if (exported === '=' && ts.isObjectLiteralExpression(value)) {
          for (const p of value.properties) {
            const name = p.name !== undefined && (ts.isIdentifier(p.name) || ts.isStringLiteralLike(p.name)) ? p.name.text : undefined;
            if (name === undefined) continue;
            if (ts.isShorthandPropertyAssignment(p)) exports.set(name, { _tag: 'Local', name });
            else if (ts.isPropertyAssignment(p) && ts.isIdentifier(unwrap(p.initializer))) exports.set(name, { _tag: 'Local', name: (unwrap(p.initializer) as TS.Identifier).text });
            else exportOnly(name, ts.isPropertyAssignment(p) ? kindOfInitializer(p.initializer) : 'function', p);
          }
        } else {
          const name = exported === '=' ? 'default' : exported;
          if (ts.isIdentifier(value)) exports.set(name, { _tag: 'Local', name: value.text });
          else exportOnly(name, kindOfInitializer(assignment.right), statement);
        }
        continue;
      }
      const required = ts.isExpressionStatement(statement) ? requireCall(statement.expression) : undefined;
      if (required !== undefined && required.member === undefined) {
        sideEffectImports.push(required.specifier);
        continue;
      }
      const vars = hoistedVarNames(statement);
      if (vars.length > 0) declare(vars, 'variable', statement);
      others.push(statement);
    }
  }
  // Top-level statements that change a module-level declaration belong to it.
  for (const statement of others) {
    for (const name of mutatedNames(statement)) {
      const b = bindings.get(name);
      if (b?._tag === 'Local' && !b.declaration.nodes.includes(statement) && !b.declaration.attached.includes(statement)) b.declaration.attached.push(statement);
    }
  }
  return index;
};

// cache

const modules = new Map<string, { readonly text: string; readonly index: ModuleIndex }>();

/**
 * The index of a script file as this process runs it, parsed at most once per text; `undefined`
 * when the file does not exist or is not a script. The text is the one loaded (see
 * `loadedSource`): when the file was edited on disk after its module was loaded and not reloaded,
 * the index describes the loaded text, and the file is recorded as observed in a state that never
 * holds again (a fingerprint made from it is not kept).
 *
 * @internal
 * @example
 * loadModule('/project/pipeline.ts')?.bindings.get('normalize');
 */
export const loadModule = (file: string): ModuleIndex | undefined => loadModuleSource(file)?.index;

/**
 * Like {@link loadModule}, with the status of the text indexed.
 *
 * @internal
 * @example
 * loadModuleSource('/project/pipeline.ts')?.status; // 'current'
 */
export const loadModuleSource = (file: string): { readonly index: ModuleIndex; readonly status: LoadedSource['status'] } | undefined => {
  if (!isScript(file)) return undefined;
  const stats = statOf(file);
  if (stats === undefined) return undefined;
  const source = loadedSource(file, `${stats.mtimeMs}:${stats.ctimeMs}:${stats.size}:${stats.ino}`);
  if (source === undefined) return undefined;
  const cached = modules.get(file);
  if (cached !== undefined && cached.text === source.text) return { index: cached.index, status: source.status };
  const index = buildIndex(file, source.text);
  modules.set(file, { text: source.text, index });
  return { index, status: source.status };
};

// declarations

const mergeFree = (all: readonly FreeNames[]): FreeNames => {
  if (all.length === 1 && all[0] !== undefined) return all[0];
  const names = new Map<string, NameUse>();
  for (const f of all) {
    for (const [name, use] of f.names) {
      const previous = names.get(name);
      if (previous === null) continue;
      names.set(name, use === null ? null : new Set([...(previous ?? []), ...use]));
    }
  }
  return { names, loads: all.flatMap((f) => f.loads) };
};

/**
 * Follows an import to the module-level declaration it names, through re-exports.
 *
 * @internal
 * @example
 * importedDeclaration(index, './models', 'Model')?.declaration.kind; // 'class'
 */
export const importedDeclaration = (from: ModuleIndex, specifier: string, name: string, depth = 0): { readonly module: ModuleIndex; readonly declaration: Declaration } | undefined => {
  if (depth > 32) return undefined;
  const file = localFile(from.file, specifier);
  const target = file === undefined ? undefined : loadModule(file);
  if (target === undefined) return undefined;
  const exported = target.exports.get(name);
  const local = (n: string) => {
    const b = target.bindings.get(n);
    if (b?._tag === 'Local') return { module: target, declaration: b.declaration };
    return b?._tag === 'Import' ? importedDeclaration(target, b.specifier, b.imported, depth + 1) : undefined;
  };
  if (exported?._tag === 'Declaration') return { module: target, declaration: exported.declaration };
  if (exported?._tag === 'Local') return local(exported.name);
  if (exported?._tag === 'Reexport') return importedDeclaration(target, exported.specifier, exported.imported, depth + 1);
  for (const star of target.starExports) {
    const found = importedDeclaration(target, star, name, depth + 1);
    if (found !== undefined) return found;
  }
  return local(name);
};

/**
 * The canonical text of a declaration or other fingerprinted node: a `let`/`const`/`var`
 * declaration keeps its keyword.
 *
 * @internal
 * @example
 * nodeText(variableDeclaration); // '( const ) (VariableDeclaration …)'
 */
export const nodeText = (node: TS.Node): string => {
  const out: string[] = [];
  const ts = typescript();
  if (ts.isVariableDeclaration(node) && ts.isVariableDeclarationList(node.parent)) out.push('(', declarationKeyword(node.parent.flags), ')');
  canonicalText(node, out);
  return out.join(' ');
};

/**
 * The canonical text and the free names of a declaration, computed once.
 *
 * @internal
 * @example
 * declarationInfo(d).free.names.has('SCALE');
 */
export const declarationInfo = (d: Declaration): { readonly text: string; readonly free: FreeNames } => {
  if (d.text === undefined || d.free === undefined) {
    const nodes = [...d.nodes, ...d.attached];
    d.text = nodes.map(nodeText).join('\n');
    d.free = mergeFree(nodes.map((n) => freeNames(n)));
  }
  return { text: d.text, free: d.free };
};

/**
 * The canonical text of a whole module, computed once.
 *
 * @internal
 * @example
 * wholeModuleText(index).length;
 */
export const wholeModuleText = (index: ModuleIndex): string => (index.wholeText ??= nodeText(index.sourceFile));

// values computed at run time

/**
 * What a module-level variable's value depends on besides the code: the environment variables and
 * the arguments its initializer reads (which can be read again now), and other run-time sources
 * (the clock, randomness, files, the process, a `let` reassigned by a function), named by their
 * text, whose effect on the value cannot be known without the value itself.
 *
 * @internal
 * @example
 * runtimeReads(d); // { env: ['SCALE'], argv: false, opaque: [] } for `const SCALE = Number(process.env.SCALE ?? 1)`
 */
export interface RuntimeReads {
  readonly env: readonly string[];
  readonly argv: boolean;
  readonly opaque: readonly string[];
}

const RUNTIME_GLOBALS = new Set(['Date', 'performance', 'crypto', 'globalThis', 'window', 'navigator', 'fetch', 'setTimeout', 'setInterval', 'Bun', 'Deno']);

const runtimeCache = new WeakMap<Declaration, RuntimeReads>();

/** Whether `name`, written at `node`, is declared in a function or block around it inside `root` (so not the module-level name). */
const shadowedWithin = (node: TS.Node, root: TS.Node, name: string): boolean => {
  for (let scope: TS.Node | undefined = node.parent; scope !== undefined && scope !== root.parent; scope = scope.parent) {
    if (scopeDeclarations(scope)?.has(name) === true) return true;
  }
  return false;
};

interface RuntimeAccumulator {
  readonly env: Set<string>;
  argv: boolean;
  readonly opaque: Set<string>;
  readonly visitedFunctions: Set<TS.Node>;
}

/**
 * Collects the run-time reads of `root` in module `index`. Outside a function body, nested
 * functions and classes are skipped (they do not run at import); the module's own functions it
 * calls are scanned too when `followCalls`.
 */
const scanRuntime = (index: ModuleIndex, root: TS.Node, inFunctionBody: boolean, followCalls: boolean, acc: RuntimeAccumulator): void => {
  const ts = typescript();
  const visit = (n: TS.Node): void => {
    if (!inFunctionBody && isFunctionWithBody(n) && n !== root) return;
    if (!inFunctionBody && ts.isClassLike(n) && n !== root) return;
    if (ts.isPropertyAccessExpression(n) || ts.isElementAccessExpression(n)) {
      const object = unwrap(n.expression);
      const member = ts.isPropertyAccessExpression(n) ? n.name.text : ts.isStringLiteralLike(n.argumentExpression) ? n.argumentExpression.text : undefined;
      if (ts.isIdentifier(object) && object.text === 'process' && !index.bindings.has('process') && !shadowedWithin(n, root, 'process')) {
        if (member === 'argv') acc.argv = true;
        else if (member !== 'env') acc.opaque.add(n.getText(index.sourceFile));
        else {
          const parent = n.parent;
          const name =
            ts.isPropertyAccessExpression(parent) && parent.expression === n
              ? parent.name.text
              : ts.isElementAccessExpression(parent) && parent.expression === n && ts.isStringLiteralLike(parent.argumentExpression)
                ? parent.argumentExpression.text
                : undefined;
          if (name === undefined) acc.opaque.add(n.getText(index.sourceFile));
          else acc.env.add(name);
        }
        return;
      }
      if (ts.isIdentifier(object) && object.text === 'Math' && member === 'random' && !index.bindings.has('Math')) acc.opaque.add(n.getText(index.sourceFile));
    }
    if (ts.isIdentifier(n) && isReference(n, n.parent) && !shadowedWithin(n, root, n.text)) {
      const b = index.bindings.get(n.text);
      if (b === undefined && RUNTIME_GLOBALS.has(n.text)) acc.opaque.add(n.parent.getText(index.sourceFile));
      else if (b?._tag === 'Import' && specifierKind(b.specifier) === 'builtin') acc.opaque.add(n.parent.getText(index.sourceFile));
      else if (followCalls && b?._tag === 'Local' && b.declaration.kind === 'function') {
        // A function of the module called at import: what it reads counts too.
        for (const node of b.declaration.nodes) {
          if (acc.visitedFunctions.has(node)) continue;
          acc.visitedFunctions.add(node);
          scanRuntime(index, node, true, true, acc);
        }
      }
    }
    if (ts.isCallExpression(n) && (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === 'require'))) {
      const [first] = n.arguments;
      if (first === undefined || !ts.isStringLiteralLike(first)) acc.opaque.add(n.getText(index.sourceFile));
    }
    ts.forEachChild(n, visit);
  };
  visit(root);
};

const environmentCache = new WeakMap<TS.Node, { readonly env: readonly string[]; readonly argv: boolean }>();

/**
 * The environment variables (by literal name) and whether the arguments are read by code when it
 * runs: a step's function or a helper reading `process.env.LR` gives a different result under
 * another value, so the value counts like the code.
 *
 * @internal
 * @example
 * environmentReads(index, fnNode); // { env: ['LR'], argv: false }
 */
export const environmentReads = (index: ModuleIndex, node: TS.Node): { readonly env: readonly string[]; readonly argv: boolean } => {
  const cached = environmentCache.get(node);
  if (cached !== undefined) return cached;
  const acc: RuntimeAccumulator = { env: new Set(), argv: false, opaque: new Set(), visitedFunctions: new Set() };
  scanRuntime(index, node, true, false, acc);
  const result = { env: [...acc.env].sort(), argv: acc.argv };
  environmentCache.set(node, result);
  return result;
};

/**
 * The run-time reads of a module-level variable (see {@link RuntimeReads}): in its initializer and
 * the top-level statements that change it, outside nested functions, and in the module's own
 * functions they call; and, for a `let` or `var`, assignments to it inside the module's functions.
 * Functions, classes and enums are code: their declarations read nothing at run time.
 *
 * @internal
 * @example
 * runtimeReads(d).opaque; // ['Date.now()'] for `const STARTED = Date.now()`
 */
export const runtimeReads = (d: Declaration): RuntimeReads => {
  const cached = runtimeCache.get(d);
  if (cached !== undefined) return cached;
  const ts = typescript();
  const index = d.module;
  const acc: RuntimeAccumulator = { env: new Set(), argv: false, opaque: new Set(), visitedFunctions: new Set() };
  const opaque = acc.opaque;
  if (d.kind === 'variable') {
    for (const node of [...d.nodes, ...d.attached]) scanRuntime(index, node, false, true, acc);
    // A `let` or `var` a function assigns: its value depends on what ran before.
    const first = d.nodes[0];
    const reassignable = first !== undefined && ts.isVariableDeclaration(first) && ts.isVariableDeclarationList(first.parent) && (first.parent.flags & ts.NodeFlags.Const) === 0;
    if (reassignable) {
      const names = new Set(d.names);
      const visit = (n: TS.Node, inFunction: boolean): void => {
        const nowInFunction = inFunction || isFunctionWithBody(n);
        if (nowInFunction) {
          const target =
            ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment
              ? n.left
              : (ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)
                ? n.operand
                : undefined;
          const assigned = target === undefined ? undefined : unwrap(target);
          if (assigned !== undefined && ts.isIdentifier(assigned) && names.has(assigned.text) && !shadowedWithin(assigned, index.sourceFile, assigned.text)) {
            opaque.add(`${assigned.text}, assigned in a function (${n.getText(index.sourceFile)})`);
          }
        }
        ts.forEachChild(n, (c) => visit(c, nowInFunction));
      };
      visit(index.sourceFile, false);
    }
  }
  const result: RuntimeReads = { env: [...acc.env].sort(), argv: acc.argv, opaque: [...opaque].sort() };
  runtimeCache.set(d, result);
  return result;
};
