/**
 * The values a code fingerprint is made of. Plain, frozen data: a fingerprint can be stored
 * with a cache entry and compared with a later one.
 *
 * @packageDocumentation
 */

// model

/**
 * Where a function was called from, as a V8 stack trace reports it: an absolute file path
 * (or whatever the engine printed, like `<anonymous>` for `eval`), a 1-based line and a
 * 1-based column.
 *
 * @example
 * const site: CallSite = { file: '/project/pipeline.ts', line: 12, column: 17 };
 */
export interface CallSite {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/**
 * What a {@link FingerprintPart} stands for.
 *
 * - `source`: the step's own function (its source, or only its text when the fingerprint is shallow).
 * - `function`, `variable`, `class`, `enum`: a declaration the step uses, directly or through other declarations.
 * - `module`: a relatively imported file the step uses declarations of (or all of it, when it uses the module as a whole).
 * - `package`: an npm package the step imports, by name and installed version.
 * - `builtin`: a Node built-in module, by name.
 * - `shallow`: a shallow spot, not code: a place where the code a step reaches cannot be found (a
 *   parameter typed `any`, an interface with methods and no class); its name says which. It does
 *   not count in the fingerprint's hash.
 *
 * @example
 * const kind: FingerprintPartKind = 'function';
 */
export type FingerprintPartKind = 'function' | 'variable' | 'class' | 'enum' | 'module' | 'package' | 'builtin' | 'source' | 'shallow';

/**
 * One thing a code fingerprint covers, with its own hash, so that two fingerprints can be compared
 * part by part (see `diffFingerprints`).
 *
 * @example
 * const part: FingerprintPart = { name: 'normalize', kind: 'function', file: '/project/helpers.ts', hash: '9f1c…' };
 * const pkg: FingerprintPart = { name: 'fp-ts', kind: 'package', version: '2.16.11', hash: '04ab…' };
 */
export interface FingerprintPart {
  /** The declared name (names, comma-separated, for a destructuring declaration); a module's path relative to the step's file; a package's name. */
  readonly name: string;
  readonly kind: FingerprintPartKind;
  /** The absolute path of the file that declares it (declarations, modules and the step's source). */
  readonly file?: string;
  /** A package's installed version (`'unresolved'` when it cannot be found). */
  readonly version?: string;
  /** The hex digest of what the part stands for. */
  readonly hash: string;
}

/**
 * The input names a step's function reads from its argument, as its source declares them: the
 * names it cannot run without, and every name its parameter's type lists. Derived from the
 * source; not part of the fingerprint's hash.
 *
 * @example
 * // function train({ data, gamma = 0.1, seed }: { data: number[][]; gamma: number; seed?: number; note: string | undefined })
 * const inputs: StepInputs = { required: ['data'], known: ['data', 'gamma', 'note', 'seed'] };
 */
export interface StepInputs {
  /** Names the function needs: declared without `?`, with a type that does not accept `undefined`, and read without a default. Sorted. */
  readonly required: readonly string[];
  /** Every property name of the parameter's type. Sorted. */
  readonly known: readonly string[];
}

/**
 * The code fingerprint of a step's function: a digest of the code that runs when the step runs,
 * as far as it can be read from the source files.
 *
 * @example
 * const fp: CodeFingerprint = fingerprintFunction(fn, site, hashKey);
 * if (fp.shallow) console.warn(`Only the text of ${fn.name} is fingerprinted: ${fp.reason}`);
 * for (const name of fp.capturedVariables) console.warn(`${name} is captured from an enclosing function; pass it as a parameter.`);
 */
export interface CodeFingerprint {
  /** The hex digest over every part (kind, name and hash; not file paths, so moving a project keeps its fingerprints). */
  readonly hash: string;
  /** True when only the function's own text could be fingerprinted. */
  readonly shallow: boolean;
  /** Why the fingerprint is shallow. */
  readonly reason?: string;
  /** The file that defines the step's function, when found. */
  readonly file?: string;
  /** Every declaration, module, package and built-in the fingerprint covers, sorted: the step's own source first. */
  readonly parts: readonly FingerprintPart[];
  /** Names the function uses from an enclosing function or block scope: their values are not part of the fingerprint. */
  readonly capturedVariables: readonly string[];
  /**
   * What the fingerprint could not see or had to decide, for the user to read: a module edited
   * after this process loaded it, an import computed at run time, a module-level value computed at
   * run time that could not be read. Each names the module, expression or binding and what to do.
   */
  readonly warnings: readonly string[];
  /**
   * Shallow spots: places where code the step reaches through its values cannot be found from its
   * parameters' types (`any`, `unknown`, a function type, an interface with methods and no class),
   * in words, sorted. They are also parts of kind `shallow`, so they are kept with a cache entry and
   * `runner.explain` names them. Absent when there are none. (A class named by a parameter's type
   * is followed: its members are parts named `Class.member`.)
   */
  readonly shallowSpots?: readonly string[];
  /**
   * The input names the function requires and knows, when its source says them plainly: a first
   * parameter typed with a type literal, or an interface or type alias of the same file (or
   * imported from a relative module). Absent otherwise: shallow fingerprints, JavaScript,
   * generics, unions, index signatures, computed keys.
   */
  readonly inputs?: StepInputs;
}

/**
 * The parts that differ between two fingerprints, by name (and file, when two parts share a name).
 *
 * @example
 * const d: FingerprintDiff = { changed: ['normalize'], added: [], removed: [] };
 */
export interface FingerprintDiff {
  readonly changed: string[];
  readonly added: string[];
  readonly removed: string[];
}
