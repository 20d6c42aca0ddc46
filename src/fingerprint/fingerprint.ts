/**
 * Code fingerprints that follow the code: a step's function, and transitively every module-level
 * function, constant, class and enum it uses, in its own file and in the files it imports
 * relatively; npm packages by name and installed version, Node built-ins by name.
 *
 * What counts. Each declaration is hashed from a canonical text of its syntax tree (kinds,
 * names, literal values, operators), so whitespace, comments, semicolons, trailing commas,
 * quote style and redundant parentheses do not count. Type syntax does not count either:
 * annotations, `as`/`satisfies`/`!`, type arguments and parameters, interfaces, type aliases,
 * `declare`, overload signatures and `import type` are left out, and interfaces and type aliases
 * are never dependencies. (With `emitDecoratorMetadata`, types on decorated members do reach
 * run time; changing them does not change the fingerprint.)
 *
 * What is followed. Names are resolved by a syntactic scope analysis of each file (no type
 * checker): a parameter or local that shadows a module-level name is not a reference to it.
 * A namespace import read as `h.x` contributes only the export `x`; used any other way it
 * contributes the whole module. Top-level statements that change a module-level value
 * (`CONFIG.x = 1`, `Object.assign(CONFIG, …)`) count as part of it. A function or class
 * declared in an enclosing function is fingerprinted too; any other name from an enclosing
 * function or block is reported in `capturedVariables`. Classes whose instances reach the code as
 * values are followed through its parameters' types (see `value-types.ts`): each member is a part
 * (`Model.predict`); where the types cannot say, a shallow spot is named. The codec of a step's
 * output is found where the step is defined (`fingerprintOutputCodec`), and a notebook step's
 * helpers in the notebook's cells (see `notebook.ts`).
 *
 * Imports are resolved as the runtime resolves them: relative paths, tsconfig `paths`/`baseUrl`
 * aliases, package.json `#imports`, and packages whose real path is outside `node_modules`
 * (linked, workspaces, `file:`) are the project's source and followed like relative imports; a
 * computed `import()`/`require()` whose template names a literal folder covers every file there it
 * can match (any other is warned about); modules imported for their side effects
 * (`import './overrides'`) by a module the step's code is in or uses count whole.
 *
 * What runs. The source read is the text this process loaded (see `observed.ts`): after an edit on
 * disk of a module loaded and not reloaded, the fingerprint describes the loaded code and warns;
 * when which code runs cannot be told, it warns and its hash is never repeated. Module-level
 * variables computed at run time count by the environment variables and arguments they read, or by
 * their exported value; a warning names any other. A bound or built-in function (`[native code]`)
 * gets a fingerprint of its own that never matches another.
 *
 * The digest over the parts leaves file paths out, so a project moved or cloned elsewhere keeps
 * its fingerprints.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import type * as TS from 'typescript';
import { encodeCanonical } from '../encoding/canonical';
import { stepInputs } from './inputs';
import { codeReachedThroughValues, valueTypesOf, type ReachedClass } from './value-types';
import { acceptDiskText, ARGV_KEY, envKey, loadedModuleEntry, loadedModuleFiles, noteObserved, sourceOfRunningFile, stillHolds, trackConsultedFiles, valueState, witnessOf, type ObservationWitness } from './observed';
import type { CallSite, CodeFingerprint, FingerprintDiff, FingerprintPart, FingerprintPartKind, StepInputs } from './model';
import {
  dataDigest,
  declarationInfo,
  filesMatching,
  isScript,
  loadModule,
  localFile,
  nodeText,
  packageVersion,
  environmentReads,
  importedDeclaration,
  resolveImport,
  runtimeReads,
  wholeModuleText,
  type Declaration,
  type ModuleIndex,
} from './modules';
import { notebookCells, notebookParts } from './notebook';
import { codeDeclarationIn, freeNames, isNativeCode, isTypeOnly, scopeDeclarations, typescript, unwrap, type DynamicLoad, type NameUse } from './syntax';

export { isNativeCode } from './syntax';

// utils

type Hash = (bytes: Uint8Array) => string;

/** The version of the fingerprint format: a new version changes every fingerprint once. */
const FORMAT = 'stepcache-code-fingerprint 1';

const encoder = new TextEncoder();

const digestOf = (hash: Hash, text: string): string => hash(encoder.encode(text));

const memoDigest = (cache: WeakMap<object, string>, hash: Hash, text: () => string): string => {
  let d = cache.get(hash);
  if (d === undefined) {
    d = digestOf(hash, text());
    cache.set(hash, d);
  }
  return d;
};

const nodeDigests = new WeakMap<TS.Node, WeakMap<object, string>>();

const digestOfNode = (hash: Hash, node: TS.Node): string => {
  let cache = nodeDigests.get(node);
  if (cache === undefined) {
    cache = new WeakMap();
    nodeDigests.set(node, cache);
  }
  return memoDigest(cache, hash, () => `source\n${nodeText(node)}`);
};

const framed = (s: string): string => `${s.length}:${s}`;

const KIND_ORDER: readonly FingerprintPartKind[] = ['source', 'function', 'class', 'enum', 'variable', 'module', 'package', 'builtin', 'shallow'];

const compareParts = (a: FingerprintPart, b: FingerprintPart): number =>
  KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) || ((a.file ?? '') < (b.file ?? '') ? -1 : (a.file ?? '') > (b.file ?? '') ? 1 : 0);

/** The digest over every part: kind, name and hash, sorted and length-framed. File paths are left out, and so are shallow spots (notes, not code). */
const totalDigest = (hash: Hash, parts: readonly FingerprintPart[], shallow: boolean): string => {
  const lines = parts.filter((p) => p.kind !== 'shallow').map((p) => framed(p.kind) + framed(p.name) + framed(p.hash)).sort();
  return digestOf(hash, `${FORMAT}\nshallow=${String(shallow)}\n${lines.join('\n')}`);
};

// locating the step's function

type CallLike = TS.CallExpression | TS.NewExpression;

interface Located {
  readonly module: ModuleIndex;
  /** The node fingerprinted as the step's source: a function, or a module-level declaration's first node. */
  readonly node: TS.Node;
  readonly declaration?: Declaration;
  readonly name: string;
  /** The function itself, when the node is one or declares one (for the cross-checks). */
  readonly fn: TS.SignatureDeclaration | undefined;
}

type Location = { readonly _tag: 'Found'; readonly located: Located } | { readonly _tag: 'NotFound'; readonly reason: string };

const notFound = (reason: string): Location => ({ _tag: 'NotFound', reason });

const isCallLike = (node: TS.Node): node is CallLike => {
  const ts = typescript();
  return ts.isCallExpression(node) || ts.isNewExpression(node);
};

/** The function a fingerprinted node is or declares. */
const functionOf = (node: TS.Node): TS.SignatureDeclaration | undefined => {
  const ts = typescript();
  const inner = unwrap(node);
  if (ts.isFunctionDeclaration(inner) || ts.isFunctionExpression(inner) || ts.isArrowFunction(inner) || ts.isMethodDeclaration(inner)) return inner;
  if (ts.isVariableDeclaration(inner) || ts.isPropertyAssignment(inner)) return inner.initializer === undefined ? undefined : functionOf(inner.initializer);
  if (ts.isExportAssignment(inner)) return functionOf(inner.expression);
  if (ts.isExpressionStatement(inner) && ts.isBinaryExpression(inner.expression)) return functionOf(inner.expression.right);
  return undefined;
};

/** The `name` JavaScript gives a function written at this place. */
const expectedName = (fn: TS.SignatureDeclaration): string => {
  const ts = typescript();
  if (ts.isFunctionDeclaration(fn)) return fn.name?.text ?? 'default';
  if (ts.isMethodDeclaration(fn)) return ts.isIdentifier(fn.name) || ts.isStringLiteralLike(fn.name) ? fn.name.text : '';
  if (ts.isFunctionExpression(fn) && fn.name !== undefined) return fn.name.text;
  let parent = fn.parent;
  while (parent !== undefined && unwrap(parent) !== parent) parent = parent.parent;
  if (parent === undefined) return '';
  if (ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (ts.isPropertyAssignment(parent) && (ts.isIdentifier(parent.name) || ts.isStringLiteralLike(parent.name))) return parent.name.text;
  if (ts.isExportAssignment(parent)) return 'default';
  return '';
};

/** The `length` JavaScript gives the function: parameters before the first with a default or a rest. */
const expectedLength = (fn: TS.SignatureDeclaration): number => {
  let n = 0;
  for (const p of fn.parameters) {
    if (isTypeOnly(p)) continue;
    if (p.initializer !== undefined || p.dotDotDotToken !== undefined) break;
    n++;
  }
  return n;
};

const fromDeclaration = (module: ModuleIndex, declaration: Declaration): Located => {
  const node = declaration.nodes[0] as TS.Node;
  return { module, node, declaration, name: declaration.names.join(', '), fn: functionOf(node) };
};

/** What the first argument of a call names: a function written there, or a declaration it names. */
const argumentOf = (index: ModuleIndex, call: CallLike, where: string): Location => {
  const ts = typescript();
  const first = call.arguments?.[0];
  if (first === undefined) return notFound(`the call at ${where} passes no function`);
  const arg = unwrap(first);
  if (ts.isArrowFunction(arg) || ts.isFunctionExpression(arg)) return { _tag: 'Found', located: { module: index, node: arg, name: arg.name?.text ?? '', fn: arg } };
  if (ts.isIdentifier(arg)) {
    for (let scope: TS.Node | undefined = call.parent; scope !== undefined && !ts.isSourceFile(scope); scope = scope.parent) {
      if (scopeDeclarations(scope)?.has(arg.text) !== true) continue;
      const code = codeDeclarationIn(scope, arg.text);
      return code === undefined
        ? notFound(`the function passed at ${where} is ${arg.text}, a variable of an enclosing function`)
        : { _tag: 'Found', located: { module: index, node: code, name: arg.text, fn: functionOf(code) } };
    }
    const b = index.bindings.get(arg.text);
    if (b?._tag === 'Local') return { _tag: 'Found', located: fromDeclaration(index, b.declaration) };
    const imported = b?._tag === 'Import' ? importedDeclaration(index, b.specifier, b.imported) : undefined;
    if (imported !== undefined) return { _tag: 'Found', located: fromDeclaration(imported.module, imported.declaration) };
    return notFound(`the function passed at ${where} is ${arg.text}, whose source cannot be found`);
  }
  if (ts.isPropertyAccessExpression(arg) && ts.isIdentifier(arg.expression) && ts.isIdentifier(arg.name)) {
    const b = index.bindings.get(arg.expression.text);
    const imported = b?._tag === 'Import' && b.imported === '*' ? importedDeclaration(index, b.specifier, arg.name.text) : undefined;
    if (imported !== undefined) return { _tag: 'Found', located: fromDeclaration(imported.module, imported.declaration) };
  }
  return notFound(`the function passed at ${where} is computed at run time (${ts.SyntaxKind[arg.kind] ?? 'expression'}), not written in the source`);
};

/** Whether a located function can be the step's function: same name and same number of parameters. */
const mismatch = (located: Located, fn: Function): string | undefined => {
  if (located.fn === undefined) return undefined;
  const name = expectedName(located.fn);
  if (name !== fn.name) return `the function there is named ${JSON.stringify(name)}, the step's ${JSON.stringify(fn.name)}`;
  const length = expectedLength(located.fn);
  if (length !== fn.length) return `the function there takes ${length} parameters, the step's ${fn.length}`;
  return undefined;
};

const IDENTIFIER = /[A-Za-z_$][\w$]*/g;

const identifiersOf = (text: string): Set<string> => new Set(text.match(IDENTIFIER) ?? []);

/** How alike two texts are, by the identifiers they use (Jaccard index). */
const similarity = (a: Set<string>, b: Set<string>): number => {
  let common = 0;
  for (const x of a) if (b.has(x)) common++;
  const union = a.size + b.size - common;
  return union === 0 ? 0 : common / union;
};

/**
 * Finds the step's function from the call site of `step()`: the first argument of the call
 * whose callee is at the reported position, else of the calls on that line, cross-checked with
 * the function's name, parameter count and, between several candidates, its text.
 */
/** The call whose callee is at a site (V8 reports the callee's position), when the site is in the file. */
const callAt = (index: ModuleIndex, site: CallSite): { readonly primary: CallLike | undefined; readonly lineStart: number; readonly lineEnd: number } | undefined => {
  const ts = typescript();
  const sf = index.sourceFile;
  const starts = sf.getLineStarts();
  const lineStart = starts[site.line - 1];
  if (lineStart === undefined || site.line < 1) return undefined;
  const lineEnd = starts[site.line] ?? sf.text.length;
  const pos = Math.min(lineStart + Math.max(site.column - 1, 0), lineEnd);
  const contains = (c: TS.Node): TS.Node | undefined => (c.getStart(sf) <= pos && pos < c.end ? c : undefined);
  const inArray = (children: TS.NodeArray<TS.Node>): TS.Node | undefined => {
    let lo = 0;
    let hi = children.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((children[mid] as TS.Node).end <= pos) lo = mid + 1;
      else hi = mid;
    }
    const c = children[lo];
    return c === undefined ? undefined : contains(c);
  };
  let primary: CallLike | undefined;
  for (let node: TS.Node | undefined = sf; node !== undefined; ) {
    node = ts.forEachChild(node, contains, inArray);
    if (node !== undefined && isCallLike(node) && (node.getStart(sf) === pos || (node.expression.getStart(sf) <= pos && pos <= node.expression.end))) primary = node;
  }
  return { primary, lineStart, lineEnd };
};

const locate = (index: ModuleIndex, site: CallSite, fn: Function): Location => {
  const ts = typescript();
  const sf = index.sourceFile;
  const where = `${site.file}:${site.line}:${site.column}`;
  const at = callAt(index, site);
  if (at === undefined) return notFound(`${where} is past the end of the file, which must have changed since it was loaded`);
  const { primary, lineStart, lineEnd } = at;
  let rejected: string | undefined;
  if (primary !== undefined) {
    const found = argumentOf(index, primary, where);
    if (found._tag === 'Found') {
      const wrong = mismatch(found.located, fn);
      if (wrong === undefined) return found;
      rejected = `the function at ${where} is not the step's function (${wrong}); the file may have changed since it was loaded`;
    } else rejected = found.reason;
  }

  // Otherwise every call on the line that passes a matching function.
  const calls: CallLike[] = [];
  const visit = (n: TS.Node): void => {
    if (n.end <= lineStart || n.pos >= lineEnd) return;
    if (isCallLike(n) && n !== primary && (n.arguments?.length ?? 0) > 0) {
      const start = n.getStart(sf);
      if (start >= lineStart && start < lineEnd) calls.push(n);
    }
    ts.forEachChild(n, visit);
  };
  ts.forEachChild(sf, visit);
  const matching = calls.flatMap((c) => {
    const found = argumentOf(index, c, where);
    return found._tag === 'Found' && mismatch(found.located, fn) === undefined ? [found.located] : [];
  });
  if (matching.length === 1 && matching[0] !== undefined) return { _tag: 'Found', located: matching[0] };
  if (matching.length === 0) return notFound(rejected ?? `no call at ${where} passes a function written in the source`);
  const own = identifiersOf(Function.prototype.toString.call(fn));
  const scored = matching.map((l) => ({ l, score: similarity(own, identifiersOf(l.module.sourceFile.text.slice(l.node.getStart(l.module.sourceFile), l.node.end))) })).sort((a, b) => b.score - a.score);
  const [best, second] = scored;
  if (best !== undefined && (second === undefined || best.score > second.score)) return { _tag: 'Found', located: best.l };
  return notFound(`several calls on line ${site.line} of ${site.file} could define the step's function`);
};

// the closure of a step's code

interface ModuleUse {
  readonly name: string;
  whole: boolean;
  readonly digest?: string;
}

/** The values now of the environment variables and arguments that code reads, as lines for a part's digest (and observed). */
const environmentLines = (reads: { readonly env: readonly string[]; readonly argv: boolean }): string[] => {
  const lines: string[] = [];
  for (const name of reads.env) {
    const value = process.env[name];
    noteObserved(envKey(name), valueState(value));
    lines.push(`env ${name}=${JSON.stringify(value) ?? 'undefined'}`);
  }
  if (reads.argv) {
    noteObserved(ARGV_KEY, valueState(process.argv.slice(2)));
    lines.push(`argv ${JSON.stringify(process.argv.slice(2))}`);
  }
  return lines;
};

/** The exports of a loaded module, when its module system keeps them where we can see. */
const loadedExports = (file: string): Record<string, unknown> | undefined => {
  const exported = loadedModuleEntry(file)?.exports;
  return typeof exported === 'object' && exported !== null ? (exported as Record<string, unknown>) : undefined;
};

/**
 * What a module-level variable computed at run time adds to its part: the values now of the
 * environment variables and arguments it reads, or, when it reads other run-time sources, its
 * value read from the loaded module's exports; a warning when the value cannot be read.
 */
const runtimeValues = (d: Declaration): { readonly text?: string; readonly warning?: string } | undefined => {
  const reads = runtimeReads(d);
  if (reads.env.length === 0 && !reads.argv && reads.opaque.length === 0) return undefined;
  const lines = environmentLines(reads);
  if (reads.opaque.length === 0) return { text: lines.join('\n') };
  const name = d.names.join(', ');
  const exportedAs = [...d.module.exports].find(([, target]) => target._tag === 'Local' && d.names.length === 1 && target.name === d.names[0])?.[0];
  const exports = exportedAs === undefined ? undefined : loadedExports(d.module.file);
  const encoded = exports === undefined || exportedAs === undefined || !(exportedAs in exports) ? undefined : encodeCanonical(exports[exportedAs]);
  if (encoded !== undefined && E.isRight(encoded)) {
    // Read from the loaded module: valid for this process only, never kept on disk.
    noteObserved(`${d.module.file}#${exportedAs ?? name}`, 'volatile');
    lines.push(`value ${Buffer.from(encoded.right).toString('base64')}`);
    return { text: lines.join('\n') };
  }
  return {
    ...(lines.length === 0 ? {} : { text: lines.join('\n') }),
    warning: `${name} in ${d.module.file} is computed at run time (${reads.opaque.join('; ')}), and its value is not part of the key: pass it to the step as a parameter, or export it (a value that encodes is then read)`,
  };
};

/** Collects the parts a located function depends on, transitively. */
const collectParts = (root: Located, baseDir: string, hash: Hash): { parts: FingerprintPart[]; captured: string[]; warnings: string[]; shallowSpots: readonly string[] } => {
  const ts = typescript();
  const parts: FingerprintPart[] = [];
  const warnings: string[] = [];
  const captured = new Set<string>();
  const seen = new Set<object>();
  const seenExports = new Set<string>();
  const moduleUses = new Map<string, ModuleUse>();
  const packages = new Map<string, { readonly version: string; readonly uses: Set<string> }>();
  const builtins = new Map<string, Set<string>>();
  const work: (() => void)[] = [];

  /** A code part's digest, with the values now of the environment variables and arguments the code reads when it runs. */
  const withEnvironment = (digest: string, index: ModuleIndex, node: TS.Node): string => {
    const lines = environmentLines(environmentReads(index, node));
    return lines.length === 0 ? digest : digestOf(hash, `${digest}\n${lines.join('\n')}`);
  };

  const relativeName = (file: string): string => {
    const rel = path.relative(baseDir, file).split(path.sep).join('/');
    return rel.startsWith('.') ? rel : `./${rel}`;
  };

  /**
   * A module the step's code is in or uses: the modules it imports for their side effects count
   * whole (`import './overrides'` may change any value the step reads, and runs before it).
   */
  const visitedModules = new Set<ModuleIndex>();
  const visitModule = (index: ModuleIndex): void => {
    if (visitedModules.has(index)) return;
    visitedModules.add(index);
    for (const specifier of index.sideEffectImports) work.push(() => addImport(index, specifier, '*', null));
  };

  /** Classes reached through values: their members are parts of their own, so the class is not one whole part too. */
  const memberwise = new Set<Declaration>();

  const addDeclaration = (d: Declaration): void => {
    if (seen.has(d)) return;
    seen.add(d);
    if (memberwise.has(d)) return;
    visitModule(d.module);
    const code = memoDigest(d.digests, hash, () => `${d.kind}\n${declarationInfo(d).text}`);
    if (d.kind !== 'variable') {
      const [first] = d.nodes;
      parts.push({ name: d.names.join(', '), kind: d.kind, file: d.module.file, hash: first === undefined ? code : withEnvironment(code, d.module, first) });
    } else {
      const values = runtimeValues(d);
      if (values?.warning !== undefined) warnings.push(values.warning);
      parts.push({ name: d.names.join(', '), kind: d.kind, file: d.module.file, hash: values?.text === undefined ? code : digestOf(hash, `${code}\n${values.text}`) });
    }
    work.push(() => {
      const { free } = declarationInfo(d);
      for (const [name, use] of free.names) resolveModuleName(d.module, name, use);
      for (const load of free.loads) addLoad(d.module, load);
    });
  };

  /** A function or class declared inside a function (a local helper): its code is fingerprinted too. */
  const addNestedCode = (index: ModuleIndex, node: TS.Node, name: string, kind: FingerprintPartKind): void => {
    if (seen.has(node)) return;
    seen.add(node);
    parts.push({ name, kind, file: index.file, hash: withEnvironment(digestOfNode(hash, node), index, node) });
    work.push(() => resolveFreeNames(index, node));
  };

  /**
   * A class whose instances reach the step as values: each member is a part of its own
   * (`Model.predict`), so that a change says which method changed; what it extends is followed.
   */
  const addClassMembers = (c: ReachedClass): void => {
    memberwise.add(c.declaration);
    visitModule(c.module);
    for (const member of c.node.members) {
      if (isTypeOnly(member) || ts.isSemicolonClassElement(member)) continue;
      const name = ts.isConstructorDeclaration(member) ? 'constructor' : ts.isClassStaticBlockDeclaration(member) ? 'static' : member.name !== undefined && (ts.isIdentifier(member.name) || ts.isPrivateIdentifier(member.name) || ts.isStringLiteralLike(member.name) || ts.isNumericLiteral(member.name)) ? member.name.text : '[computed]';
      addNestedCode(c.module, member, `${c.name}.${name}`, ts.isPropertyDeclaration(member) ? 'variable' : 'function');
    }
    for (const clause of c.node.heritageClauses ?? []) {
      if (clause.token !== ts.SyntaxKind.ExtendsKeyword) continue;
      for (const base of clause.types) work.push(() => resolveFreeNames(c.module, base.expression));
    }
  };

  const resolveFreeNames = (index: ModuleIndex, node: TS.Node): void => {
    const free = freeNames(node);
    for (const [name, use] of free.names) {
      let inScope = false;
      for (let scope: TS.Node | undefined = node.parent; scope !== undefined && !ts.isSourceFile(scope); scope = scope.parent) {
        if (scopeDeclarations(scope)?.has(name) !== true) continue;
        inScope = true;
        const code = codeDeclarationIn(scope, name);
        if (code === undefined) captured.add(name);
        else addNestedCode(index, code, name, ts.isClassDeclaration(code) || (ts.isVariableDeclaration(code) && code.initializer !== undefined && ts.isClassExpression(unwrap(code.initializer))) ? 'class' : 'function');
        break;
      }
      if (!inScope) resolveModuleName(index, name, use);
    }
    for (const load of free.loads) addLoad(index, load);
  };

  const resolveModuleName = (index: ModuleIndex, name: string, use: NameUse): void => {
    const b = index.bindings.get(name);
    if (b === undefined) {
      // `exports.x` in a CommonJS module reads its own export x; any other unknown name is a global.
      if (name === 'exports' && use !== null) for (const member of use) resolveExport(index, member);
      return;
    }
    if (b._tag === 'Local') addDeclaration(b.declaration);
    else addImport(index, b.specifier, b.imported, use);
  };

  const addLoad = (index: ModuleIndex, load: DynamicLoad): void => {
    if (load._tag === 'Literal') return addImport(index, load.specifier, load.member ?? '*', null);
    const files = load.literals === undefined ? undefined : filesMatching(index.file, load.literals);
    if (files === undefined) {
      warnings.push(`${index.file} loads a module computed at run time (${load.text}), whose code is not fingerprinted: load it with a literal path, or list what it may load in dependsOn`);
      return;
    }
    for (const file of files) addImport(index, file, '*', null);
  };

  const addImport = (index: ModuleIndex, specifier: string, imported: string, use: NameUse): void => {
    const resolved = resolveImport(index.file, specifier);
    if (resolved._tag === 'Builtin') {
      const uses = builtins.get(resolved.name) ?? new Set<string>();
      uses.add(imported);
      builtins.set(resolved.name, uses);
      return;
    }
    if (resolved._tag === 'Package') {
      const name = resolved.name;
      const entry = packages.get(name) ?? { version: packageVersion(index.file, name), uses: new Set<string>() };
      entry.uses.add(`${specifier}#${imported}`);
      packages.set(name, entry);
      return;
    }
    if (resolved._tag === 'Unresolved') {
      const key = `unresolved:${specifier}`;
      if (!moduleUses.has(key)) moduleUses.set(key, { name: specifier, whole: false, digest: digestOf(hash, `unresolved module\n${specifier}`) });
      return;
    }
    const file = resolved.file;
    if (!isScript(file)) {
      if (!moduleUses.has(file)) moduleUses.set(file, { name: relativeName(file), whole: true, digest: dataDigest(file, hash) ?? digestOf(hash, `unreadable\n${file}`) });
      return;
    }
    const target = loadModule(file);
    if (target === undefined) return;
    if (!moduleUses.has(file)) moduleUses.set(file, { name: relativeName(file), whole: false });
    if (imported !== '*') resolveExport(target, imported);
    else if (use === null) addWholeModule(target);
    else for (const member of use) resolveExport(target, member);
  };

  const hasExport = (index: ModuleIndex, name: string, depth: number): boolean =>
    depth < 32 &&
    (index.exports.has(name) ||
      index.starExports.some((s) => {
        const file = localFile(index.file, s);
        const target = file === undefined ? undefined : loadModule(file);
        return target !== undefined && hasExport(target, name, depth + 1);
      }));

  const resolveExport = (index: ModuleIndex, name: string): void => {
    const key = `${index.file}\0${name}`;
    if (seenExports.has(key)) return;
    seenExports.add(key);
    const exported = index.exports.get(name);
    if (exported?._tag === 'Local') return resolveModuleName(index, exported.name, null);
    if (exported?._tag === 'Reexport') return addImport(index, exported.specifier, exported.imported, null);
    if (exported?._tag === 'Declaration') return addDeclaration(exported.declaration);
    const star = index.starExports.find((s) => {
      const file = localFile(index.file, s);
      const target = file === undefined ? undefined : loadModule(file);
      return target !== undefined && hasExport(target, name, 0);
    });
    if (star !== undefined) return addImport(index, star, name, null);
    if (index.bindings.has(name)) return resolveModuleName(index, name, null);
    addWholeModule(index);
  };

  const addWholeModule = (index: ModuleIndex): void => {
    const use = moduleUses.get(index.file);
    if (use === undefined) moduleUses.set(index.file, { name: relativeName(index.file), whole: true });
    else use.whole = true;
    if (seen.has(index)) return;
    seen.add(index);
    visitModule(index);
    for (const d of index.declarations) addDeclaration(d);
    for (const b of index.bindings.values()) if (b._tag === 'Import') addImport(index, b.specifier, b.imported, null);
  };

  // The step's own source.
  visitModule(root.module);
  if (root.declaration !== undefined) {
    const d = root.declaration;
    seen.add(d);
    const code = memoDigest(d.digests, hash, () => `${d.kind}\n${declarationInfo(d).text}`);
    parts.push({ name: root.name || '(anonymous)', kind: 'source', file: root.module.file, hash: withEnvironment(code, root.module, root.node) });
    work.push(() => {
      const { free } = declarationInfo(d);
      for (const [name, use] of free.names) resolveModuleName(d.module, name, use);
      for (const load of free.loads) addLoad(d.module, load);
    });
  } else {
    seen.add(root.node);
    parts.push({ name: root.name || '(anonymous)', kind: 'source', file: root.module.file, hash: withEnvironment(digestOfNode(hash, root.node), root.module, root.node) });
    work.push(() => resolveFreeNames(root.module, root.node));
  }
  // The classes whose instances reach the code through its parameters (as their types say), or that a codec decodes to.
  const reached = codeReachedThroughValues(root.module, valueTypesOf(root.fn ?? root.node), loadModule);
  for (const c of reached.classes) addClassMembers(c);
  for (let task = work.shift(); task !== undefined; task = work.shift()) task();

  for (const [file, use] of moduleUses) {
    const index = use.digest === undefined ? loadModule(file) : undefined;
    const digest = use.digest ?? (use.whole && index !== undefined ? memoDigest(index.digests, hash, () => `whole module\n${wholeModuleText(index)}`) : digestOf(hash, `module\n${use.name}`));
    parts.push({ name: use.name, kind: 'module', ...(file.startsWith('unresolved:') ? {} : { file }), hash: digest });
  }
  for (const [name, { version, uses }] of packages) {
    parts.push({ name, kind: 'package', version, hash: digestOf(hash, `package\n${name}@${version}\n${[...uses].sort().join('\n')}`) });
  }
  for (const [name, uses] of builtins) parts.push({ name, kind: 'builtin', hash: digestOf(hash, `builtin\n${name}\n${[...uses].sort().join('\n')}`) });
  const shallowSpots = reached.shallowSpots;
  for (const spot of shallowSpots) parts.push({ name: spot, kind: 'shallow', hash: digestOf(hash, `shallow\n${spot}`) });
  return { parts, captured: [...captured].sort(), warnings, shallowSpots };
};

// what runs



const nativeIds = new WeakMap<Function, string>();

/**
 * The fingerprint of a function whose code cannot be read (`[native code]`): unique to the function
 * object, so that it never matches another function's (nor the same one's in another process).
 */
const nativeFingerprint = (fn: Function, hash: Hash): CodeFingerprint => {
  let id = nativeIds.get(fn);
  if (id === undefined) {
    id = randomBytes(16).toString('hex');
    nativeIds.set(fn, id);
  }
  const parts = freezeParts([{ name: fn.name || '(anonymous)', kind: 'source', hash: digestOf(hash, `native\n${id}`) }]);
  const reason = `${fn.name || 'the function'} is a bound or built-in function ([native code]), whose code cannot be read; a result computed with it is never reused`;
  return Object.freeze({ hash: totalDigest(hash, parts, true), shallow: true, reason, parts, capturedVariables: Object.freeze([]), warnings: Object.freeze([]) });
};

/**
 * The fingerprint of a step defined in a notebook cell (tslab): its text, and what it uses from the
 * notebook's cells (see `notebook.ts`). Shallow: the modules the cells import are not followed.
 */
const notebookFingerprint = (fn: Function, text: string, cells: Readonly<Record<string, unknown>>, hash: Hash): CodeFingerprint => {
  const found = notebookParts(fn, cells, hash);
  const spots = found.shallowSpots.map((spot): FingerprintPart => ({ name: spot, kind: 'shallow', hash: digestOf(hash, `shallow\n${spot}`) }));
  const parts = freezeParts([{ name: fn.name || '(anonymous)', kind: 'source', hash: digestOf(hash, `text\n${text}`) }, ...found.parts, ...spots]);
  const helpers = found.parts.map((p) => p.name).sort();
  const covered = helpers.length === 0 ? 'its text is fingerprinted' : `its text and what it uses from the notebook's cells (${helpers.join(', ')}) are fingerprinted`;
  const reason = `it is defined in a notebook cell, which is not a source file: ${covered}, not the code of the modules the cells import`;
  return Object.freeze({
    hash: totalDigest(hash, parts, true),
    shallow: true,
    reason,
    parts,
    capturedVariables: Object.freeze([]),
    warnings: Object.freeze([]),
    ...(found.shallowSpots.length === 0 ? {} : { shallowSpots: Object.freeze([...found.shallowSpots]) }),
  });
};

/** Whether the text of `fn` is in the file as it is now (JavaScript run without a transform). */
const readsAsWritten = (fn: Function, file: string): boolean => {
  try {
    return fs.readFileSync(file, 'utf8').includes(Function.prototype.toString.call(fn));
  } catch {
    return false;
  }
};

/** Adds what the observations say to a fingerprint: warnings about edited modules, and a hash never reused when what runs is not known. */
const withObservations = (fp: CodeFingerprint, files: ReadonlyMap<string, string>, hash: Hash): CodeFingerprint => {
  const warnings = [...fp.warnings];
  let unknown = false;
  for (const [file, state] of files) {
    if (state.startsWith('stale:')) {
      warnings.push(`${file} was edited after this process loaded it: the key describes the code loaded, which is what runs (restart the process, or reload the module, to run the edit)`);
    } else if (state.startsWith('unknown:')) {
      unknown = true;
      warnings.push(`${file} changed on disk since this process first read it, and whether the code that runs is the edited one cannot be told: the result is not reused (restart the process)`);
    }
  }
  if (warnings.length === fp.warnings.length) return fp;
  const nonce = unknown ? randomBytes(16).toString('hex') : '';
  return Object.freeze({ ...fp, hash: unknown ? digestOf(hash, `${fp.hash}\nunrepeatable ${nonce}`) : fp.hash, warnings: Object.freeze(warnings) });
};

// fingerprints

/** The step's input names, or `undefined` when they cannot be read (never throws: they are an extra). */
const inputsOf = (fn: TS.SignatureDeclaration): StepInputs | undefined => {
  try {
    return stepInputs(fn);
  } catch {
    return undefined;
  }
};

const freezeParts = (parts: FingerprintPart[]): readonly FingerprintPart[] => Object.freeze(parts.sort(compareParts).map((p) => Object.freeze(p)));

/** The fingerprint of a function found in its source. */
const fingerprintLocated = (located: Located, baseDir: string, hash: Hash): CodeFingerprint => {
  const { parts, captured, warnings, shallowSpots } = collectParts(located, baseDir, hash);
  const frozen = freezeParts(parts);
  // Derived from the source, not part of the digest: the hash stays what it was.
  const inputs = located.fn === undefined ? undefined : inputsOf(located.fn);
  return Object.freeze({
    hash: totalDigest(hash, frozen, false),
    shallow: false,
    file: located.module.file,
    parts: frozen,
    capturedVariables: Object.freeze(captured),
    warnings: Object.freeze(warnings),
    ...(shallowSpots.length === 0 ? {} : { shallowSpots: Object.freeze([...shallowSpots]) }),
    ...(inputs === undefined ? {} : { inputs }),
  });
};

/**
 * The code fingerprint of a step's function. `site` is where `step()` was called (see
 * `callSiteOf`); the function is found there in its source file, and the fingerprint covers its
 * source and, transitively, every module-level function, constant, class and enum it uses, in
 * its file and in the files it imports relatively, plus the packages (name and installed
 * version) and built-ins it imports. Whitespace, comments and type syntax do not count.
 *
 * When the source cannot be found or read (no site, a notebook cell, `eval`, `new Function`,
 * a function computed at run time), only the function's text is fingerprinted and the result is
 * `shallow`, with a `reason`. A site naming a compiled `.js` file that does not exist is read from
 * the TypeScript file next to it. The source read is the one this process loaded: see `warnings`
 * for what the fingerprint could not see or had to decide (an edited module, a computed import,
 * a module-level value computed at run time).
 *
 * The result also carries the step's input names (`inputs`: the ones its first parameter requires
 * and the ones its type lists) when the source states them plainly; they are derived from the
 * source and do not count in `hash`.
 *
 * Each file is parsed once per process (per loaded text); the canonical
 * text and digest of each declaration are cached, so fingerprinting many steps of one file is cheap.
 * Never throws.
 *
 * @example
 * import { keyHashFunction } from '../hash/hashers';
 * const hashKey = await keyHashFunction();
 * const define = <F extends Function>(fn: F) => ({ fn, site: callSiteOf(new Error(), 1) });
 * const s = define(function double({ x }: { x: number }) { return 2 * x; });
 * const fp = fingerprintFunction(s.fn, s.site, hashKey);
 * fp.shallow; // false: this file is on disk
 * fp.parts[0]; // { name: 'double', kind: 'source', file: __filename, hash: '…' }
 * fp.inputs; // { required: ['x'], known: ['x'] }
 */
export function fingerprintFunction(fn: Function, site: CallSite | undefined, hash: (bytes: Uint8Array) => string): CodeFingerprint {
  if (site === undefined) return computeFingerprint(fn, site, hash);
  const at = `step\0${site.file}:${site.line}:${site.column}`;
  const reused = memoized(fn, at, site.file, hash);
  if (reused !== undefined) return reused;
  const { result, files } = trackConsultedFiles(() => computeFingerprint(fn, site, hash));
  if (!result.shallow) keep(fn, at, site.file, hash, result, files);
  return result;
}

/** A fingerprint computed before, with what it was computed from. */
interface FingerprintMemo {
  readonly hash: Hash;
  /** The source file read for the call site (see `sourceOfRunningFile`). */
  readonly file: string;
  readonly fingerprint: CodeFingerprint;
  readonly witness: ObservationWitness;
}

/**
 * The fingerprints computed, per function and call site: reused while everything observed to
 * compute one is unchanged (its witness holds). Never a shallow one (a notebook's cells change
 * without a file changing), nor one computed from a state that never holds again.
 */
const fingerprintMemos = new WeakMap<Function, Map<string, FingerprintMemo>>();

/** The fingerprint of `fn` kept under `at`, when what it was computed from still holds (observed again). */
const memoized = (fn: Function, at: string, siteFile: string, hash: Hash): CodeFingerprint | undefined => {
  const memo = fingerprintMemos.get(fn)?.get(at);
  return memo !== undefined && memo.hash === hash && sourceOfRunningFile(siteFile) === memo.file && stillHolds(memo.witness) ? memo.fingerprint : undefined;
};

/** Keeps a fingerprint of `fn` under `at` with a witness of what was observed to compute it, when there is one. */
const keep = (fn: Function, at: string, siteFile: string, hash: Hash, fingerprint: CodeFingerprint, files: ReadonlyMap<string, string>): void => {
  const witness = witnessOf(files);
  if (witness === undefined) return;
  let bySite = fingerprintMemos.get(fn);
  if (bySite === undefined) {
    bySite = new Map();
    fingerprintMemos.set(fn, bySite);
  }
  bySite.set(at, { hash, file: sourceOfRunningFile(siteFile), fingerprint, witness });
};

/** {@link fingerprintFunction}, computed. */
const computeFingerprint = (fn: Function, site: CallSite | undefined, hash: Hash): CodeFingerprint => {
  const text = Function.prototype.toString.call(fn);
  if (isNativeCode(text)) return nativeFingerprint(fn, hash);
  const shallow = (reason: string): CodeFingerprint => {
    const parts = freezeParts([{ name: fn.name || '(anonymous)', kind: 'source', hash: digestOf(hash, `text\n${text}`) }]);
    return Object.freeze({ hash: totalDigest(hash, parts, true), shallow: true, reason, parts, capturedVariables: Object.freeze([]), warnings: Object.freeze([]) });
  };
  if (site === undefined) return shallow('the place where the step was defined is unknown');
  const file = sourceOfRunningFile(site.file);
  try {
    if (loadModule(file) === undefined) {
      const cells = notebookCells();
      if (cells !== undefined) return notebookFingerprint(fn, text, cells, hash);
      return shallow(
        isScript(site.file)
          ? `its source file ${site.file} does not exist (a notebook cell, eval or new Function)`
          : `${site.file} is not a JavaScript or TypeScript source file (a notebook cell, eval, new Function or generated code)`,
      );
    }
    const attempt = (): CodeFingerprint | Extract<Location, { _tag: 'NotFound' }> => {
      const index = loadModule(file) as ModuleIndex;
      const location = locate(index, site, fn);
      if (location._tag === 'NotFound') return location;
      return fingerprintLocated(location.located, path.dirname(file), hash);
    };
    let tracked = trackConsultedFiles(attempt);
    const siteState = tracked.files.get(file);
    // An edited file whose module system keeps no entry we can see: the step's own function tells
    // which text runs, when it is JavaScript run as written (its text is in the file as it is).
    if (siteState !== undefined && siteState.startsWith('unknown:') && /\.[cm]?jsx?$/i.test(file) && readsAsWritten(fn, file)) {
      acceptDiskText(file);
      tracked = trackConsultedFiles(attempt);
    }
    const { result, files } = tracked;
    if ('_tag' in result) return shallow(result.reason);
    return withObservations(result, files, hash);
  } catch (e) {
    return shallow(`its source could not be analysed: ${e instanceof Error ? e.message : String(e)}`);
  }
};

/** The project's script files this process has loaded (without `node_modules`). */
const loadedProjectFiles = (): string[] => loadedModuleFiles().filter((f) => path.isAbsolute(f) && isScript(f) && !f.split(/[\\/]/).includes('node_modules'));

/** The module-level declarations named `fn.name` in a module, or imported there, that can be `fn`. */
const declarationsNamed = (index: ModuleIndex, fn: Function): Located[] => {
  const b = index.bindings.get(fn.name);
  const found =
    b?._tag === 'Local' ? { module: index, declaration: b.declaration } : b?._tag === 'Import' ? importedDeclaration(index, b.specifier, b.imported) : undefined;
  if (found === undefined) return [];
  const located = fromDeclaration(found.module, found.declaration);
  return located.fn !== undefined && mismatch(located, fn) === undefined ? [located] : [];
};

/**
 * The code fingerprint of a function given without a call site, like a function listed in a step's
 * `dependsOn`: found by its name where the step is defined (`near`, the step's call site: a
 * function declared or imported in that file), else among the project modules this process loaded,
 * cross-checked with its parameter count and, between several candidates, its text; then followed
 * transitively exactly like a step's function. Shallow (its own text only) when it cannot be found;
 * a bound or built-in function gets a fingerprint of its own that never matches another.
 * Never throws.
 *
 * @example
 * import { keyHashFunction } from '../hash/hashers';
 * const hashKey = await keyHashFunction();
 * const fp = fingerprintDependency(normalize, step.site, hashKey);
 * fp.parts.map((p) => p.name); // ['normalize', 'EPS', './helpers.ts']
 */
export function fingerprintDependency(fn: Function, near: CallSite | undefined, hash: (bytes: Uint8Array) => string): CodeFingerprint {
  const text = Function.prototype.toString.call(fn);
  if (isNativeCode(text)) return nativeFingerprint(fn, hash);
  if (fn.name === '') return fingerprintFunction(fn, undefined, hash);
  const at = near === undefined ? undefined : `dependency\0${near.file}:${near.line}:${near.column}`;
  const reused = near === undefined || at === undefined ? undefined : memoized(fn, at, near.file, hash);
  if (reused !== undefined) return reused;
  try {
    let foundNear = false;
    const attempt = (): CodeFingerprint | undefined => {
      const nearFile = near === undefined ? undefined : sourceOfRunningFile(near.file);
      const nearIndex = nearFile === undefined ? undefined : loadModule(nearFile);
      let candidates = nearIndex === undefined ? [] : declarationsNamed(nearIndex, fn);
      foundNear = candidates.length > 0;
      if (candidates.length === 0) {
        const seen = new Set<Declaration>();
        for (const file of loadedProjectFiles()) {
          const index = loadModule(file);
          for (const c of index === undefined ? [] : declarationsNamed(index, fn)) {
            if (c.declaration !== undefined && !seen.has(c.declaration)) {
              seen.add(c.declaration);
              candidates.push(c);
            }
          }
        }
      }
      if (candidates.length > 1) {
        const own = identifiersOf(text);
        const scored = candidates.map((l) => ({ l, score: similarity(own, identifiersOf(l.module.sourceFile.text.slice(l.node.getStart(l.module.sourceFile), l.node.end))) })).sort((a, b) => b.score - a.score);
        candidates = scored[0] !== undefined && scored[0].score > (scored[1]?.score ?? -1) ? [scored[0].l] : [];
      }
      const [located] = candidates;
      return located === undefined ? undefined : fingerprintLocated(located, path.dirname(located.module.file), hash);
    };
    const { result, files } = trackConsultedFiles(attempt);
    if (result === undefined) return fingerprintFunction(fn, undefined, hash);
    const fingerprint = withObservations(result, files, hash);
    // Found among the modules loaded, it depends on which are loaded: computed each time.
    if (foundNear && near !== undefined && at !== undefined) keep(fn, at, near.file, hash, fingerprint, files);
    return fingerprint;
  } catch {
    return fingerprintFunction(fn, undefined, hash);
  }
}

/** The codec written for output `output` in the `.outputs({ … })` chained on the call at a site, as a fingerprint root. */
const outputCodecAt = (index: ModuleIndex, site: CallSite, output: string): Located | undefined => {
  const ts = typescript();
  let node: TS.Node | undefined = callAt(index, site)?.primary;
  // step(fn).named('x').outputs({ … }): up the chain of calls made on the step.
  while (node !== undefined && ts.isPropertyAccessExpression(node.parent) && node.parent.expression === node && ts.isCallExpression(node.parent.parent)) {
    const call: TS.CallExpression = node.parent.parent;
    const spec = call.arguments[0];
    if (node.parent.name.text === 'outputs' && spec !== undefined && ts.isObjectLiteralExpression(unwrap(spec))) {
      const property = (unwrap(spec) as TS.ObjectLiteralExpression).properties.find((p) => p.name !== undefined && (ts.isIdentifier(p.name) || ts.isStringLiteralLike(p.name)) && p.name.text === output);
      const value = property === undefined ? undefined : ts.isPropertyAssignment(property) ? unwrap(property.initializer) : ts.isShorthandPropertyAssignment(property) ? property.name : undefined;
      if (value === undefined || ts.isStringLiteralLike(value)) return undefined;
      if (!ts.isIdentifier(value)) return { module: index, node: value, name: `${output} codec`, fn: undefined };
      const b = index.bindings.get(value.text);
      const found = b?._tag === 'Local' ? { module: index, declaration: b.declaration } : b?._tag === 'Import' ? importedDeclaration(index, b.specifier, b.imported) : undefined;
      return found === undefined ? undefined : fromDeclaration(found.module, found.declaration);
    }
    node = call;
  }
  return undefined;
};

/**
 * The code fingerprint of the io-ts codec a step's output is stored with, found where the step is
 * defined (`step(fn).outputs({ model: modelCodec })` at `site`): the codec's declaration and,
 * transitively, what it uses, like a step's function; the class it decodes to (the first type
 * argument of its `t.Type<Model, …>` annotation or `new t.Type<Model, …>(…)`) counts member by
 * member (`Model.predict`). A step that receives the decoded value runs that class's methods, so
 * its key includes these parts. `undefined` when the codec cannot be found in the source. Never throws.
 *
 * @example
 * const fp = fingerprintOutputCodec(trainStep.site, 'model', hashKey);
 * fp?.parts.map((p) => p.name); // ['modelCodec', 'Model.constructor', 'Model.predict', 'io-ts']
 */
export function fingerprintOutputCodec(site: CallSite | undefined, output: string, hash: (bytes: Uint8Array) => string): CodeFingerprint | undefined {
  if (site === undefined) return undefined;
  try {
    const file = sourceOfRunningFile(site.file);
    const { result, files } = trackConsultedFiles(() => {
      const index = loadModule(file);
      const located = index === undefined ? undefined : outputCodecAt(index, site, output);
      return located === undefined ? undefined : fingerprintLocated(located, path.dirname(located.module.file), hash);
    });
    return result === undefined ? undefined : withObservations(result, files, hash);
  } catch {
    return undefined;
  }
}

/**
 * A fingerprint with more parts (the codecs of a step's inputs): the parts it does not have yet are
 * added (a codec's own source part as a variable), and the hash covers them. The same fingerprint
 * when every part is already there.
 *
 * @example
 * const withCodecs = withParts(fingerprint, codecFingerprint.parts, hashKey);
 */
export function withParts(base: CodeFingerprint, extra: readonly FingerprintPart[], hash: (bytes: Uint8Array) => string): CodeFingerprint {
  const key = (p: FingerprintPart): string => `${p.kind}\0${p.name}\0${p.file ?? ''}`;
  const have = new Set(base.parts.map(key));
  const added: FingerprintPart[] = [];
  for (const part of extra) {
    const p: FingerprintPart = part.kind === 'source' ? { ...part, kind: 'variable' } : part;
    if (p.kind === 'shallow' || have.has(key(p))) continue;
    have.add(key(p));
    added.push(p);
  }
  if (added.length === 0) return base;
  const parts = freezeParts([...base.parts, ...added]);
  // Over the base's hash (which may be one never repeated) and the parts added.
  return Object.freeze({ ...base, hash: digestOf(hash, `${base.hash}\nwith\n${totalDigest(hash, freezeParts(added), false)}`), parts });
}

/**
 * The parts that changed, appeared or disappeared between two fingerprints' parts, matched by
 * kind, name and file (a name is followed by its file when two parts share it). Use it to say
 * which function, constant, module or package made a step's code fingerprint change.
 *
 * @example
 * const d = diffFingerprints(before.parts, after.parts);
 * d.changed; // ['normalize']: normalize's code changed
 * d.added;   // ['fp-ts']: the step now imports fp-ts
 */
export function diffFingerprints(before: readonly FingerprintPart[], after: readonly FingerprintPart[]): FingerprintDiff {
  const key = (p: FingerprintPart): string => `${p.kind === 'source' ? 'source' : 'part'}\0${p.name}\0${p.file ?? ''}`;
  // Shallow spots are notes about what the fingerprint cannot see, not code that changed.
  before = before.filter((p) => p.kind !== 'shallow');
  after = after.filter((p) => p.kind !== 'shallow');
  const label = (p: FingerprintPart): string => {
    const sameName = [...before, ...after].filter((q) => q.name === p.name && key(q) !== key(p));
    return sameName.length > 0 && p.file !== undefined ? `${p.name} (${p.file})` : p.name;
  };
  const old = new Map(before.map((p) => [key(p), p]));
  const now = new Map(after.map((p) => [key(p), p]));
  const changed: string[] = [];
  const added: string[] = [];
  const removed: string[] = [];
  for (const [k, p] of now) {
    const q = old.get(k);
    if (q === undefined) added.push(label(p));
    else if (q.hash !== p.hash) changed.push(label(p));
  }
  for (const [k, p] of old) if (!now.has(k)) removed.push(label(p));
  return { changed: changed.sort(), added: added.sort(), removed: removed.sort() };
}
