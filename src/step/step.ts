/**
 * Steps: typed, pure, frozen values made with {@link step} and configured fluently.
 * Every configuring call returns a new step and leaves the old one as it was.
 *
 * @packageDocumentation
 */
import type * as t from 'io-ts';
import { StepcacheError } from '../errors';
import { callSiteOf, isNativeCode, noteStepDefinedAt, type CallSite } from '../fingerprint';
import { mergeSettings, validateSettings, type CacheSettings } from '../settings/settings';

// model

/**
 * How one output is stored. `'auto'`: JSON-compatible values as JSON, typed arrays,
 * `Buffer`s and `ArrayBuffer`s as raw bytes, `undefined` as nothing. An io-ts codec
 * stores custom types: it encodes on write and validates (decodes) on load.
 *
 * @example
 * import * as t from 'io-ts';
 * const asJson: OutputFormat<number[]> = 'auto';
 * const checked: OutputFormat<number[]> = t.array(t.number);
 */
export type OutputFormat<A> = 'auto' | t.Type<A, unknown, unknown>;

/**
 * A declaration of named outputs for a step whose function returns `R`.
 *
 * @example
 * const spec: OutputSpecFor<{ model: Model; scores: number[] }> = { model: ModelCodec, scores: 'auto' };
 */
export type OutputSpecFor<R> = { readonly [K in keyof R]: OutputFormat<R[K]> };

/**
 * Any output declaration.
 *
 * @example
 * const spec: AnyOutputSpec = { model: ModelCodec, scores: 'auto' };
 */
export type AnyOutputSpec = { readonly [name: string]: 'auto' | t.Mixed };

/**
 * A typed reference to one output of a step inside a pipeline. Pass it to `p.call`
 * to wire that output into another step's input.
 *
 * @example
 * const { X_train } = p.call(trainingDataLoader); // X_train: Handle<number[][]>
 */
export interface Handle<A> {
  readonly _tag: 'Handle';
  /** The name of the step that produces it. */
  readonly step: string;
  /** The output's name (`'output'` for a step without declared outputs). */
  readonly output: string;
  /** @internal the pipeline build that made it. */
  readonly scope: object;
  /** @internal phantom type of the value; not present at run time. */
  readonly _A: A;
}

/**
 * The handles `p.call` returns for a step with return type `R` and declaration `S`.
 *
 * @example
 * type Split = StepHandles<{ train: number[]; test: number[] }, { train: 'auto'; test: 'auto' }>; // { train: Handle<number[]>; test: Handle<number[]> }
 */
export type StepHandles<R, S> = [S] extends [undefined] ? Handle<R> : { readonly [K in keyof S & keyof R]: Handle<R[K]> };

/**
 * The name of the single output of a step without declared outputs.
 *
 * @example
 * await run.output(DEFAULT_OUTPUT); // the output of a pipeline that returns one step's handle as { output }
 */
export const DEFAULT_OUTPUT = 'output';

/**
 * A step: a function from one input object to a value, with a name, settings and output declarations.
 * Frozen; configure it with the chained methods, which return new steps.
 *
 * @example
 * const normalizer = step(function normalizer({ images }: { images: number[][] }) {
 *   return images.map((row) => row.map((v) => v / 255));
 * });
 * const uncached = normalizer.withOptions({ enableCache: false });
 */
export interface Step<I, R, S extends AnyOutputSpec | undefined = undefined> {
  readonly _tag: 'Step';
  /** The step's name; defaults to the function's name. */
  readonly name: string | undefined;
  /** The step's function. */
  readonly fn: (input: I) => R | PromiseLike<R>;
  /** Settings set on the step itself (the `step` precedence layer). */
  readonly settings: CacheSettings;
  /** Declared named outputs, or `undefined` for a single output. */
  readonly outputSpec: S;
  /** Where `step()` was called: the code fingerprint reads the step's source from there. */
  readonly site: CallSite | undefined;
  /** A copy with another name. */
  named(name: string): Step<I, R, S>;
  /** A copy with these settings merged over the current ones (defined fields win). */
  withOptions(settings: CacheSettings): Step<I, R, S>;
  /** A copy whose return value is split into named outputs, each its own artifact. */
  outputs<S2 extends OutputSpecFor<R>>(spec: S2): Step<I, R, S2>;
}

/**
 * A step of any type, for code that handles steps generically.
 *
 * @example
 * const steps: AnyStep[] = [loader, trainer];
 */
export type AnyStep = Step<never, unknown, AnyOutputSpec | undefined>;

/**
 * The input type of a step.
 *
 * @example
 * type LoaderInput = StepInput<typeof loader>; // { n: number }
 */
export type StepInput<X> = X extends Step<infer I, unknown, infer _S> ? I : never;
/**
 * The (awaited) return type of a step.
 *
 * @example
 * type LoaderOutput = StepOutput<typeof loader>; // { X: number[][]; y: number[] }
 */
export type StepOutput<X> = X extends Step<never, infer R, infer _S> ? R : never;

// constructors

/** A valid step or output name: starts with a letter or `_`, then letters, digits, `_`, `.`, `-`. */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

const checkName = (name: unknown, what: string): string => {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new StepcacheError(
      'INVALID_STEP',
      `Invalid ${what} ${JSON.stringify(name)}: use letters, digits, "_", "." or "-", starting with a letter or "_" (like "svc_trainer").`,
      { field: what },
    );
  }
  return name;
};

/**
 * Names every object answers to (`__proto__`, `constructor`, `toString`, ...): as output names they
 * would read as present where nothing was stored, or set a prototype instead of a value.
 */
const RESERVED_OUTPUT_NAMES: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

const checkOutputName = (name: string, where: string): string => {
  if (RESERVED_OUTPUT_NAMES.has(name)) {
    throw new StepcacheError(
      'INVALID_STEP',
      `Invalid output name ${JSON.stringify(name)} of ${where}: every JavaScript object has a property of that name, so it cannot name an output; choose another, like "${name.replace(/^_+|_+$/g, '')}_value".`,
      { field: name, ...(where.startsWith('step ') && where !== 'step (unnamed)' ? { step: where.slice('step '.length) } : {}) },
    );
  }
  return checkName(name, `output name of ${where}`);
};

const isCodec = (x: unknown): x is t.Mixed =>
  typeof x === 'object' && x !== null && typeof (x as t.Mixed).decode === 'function' && typeof (x as t.Mixed).encode === 'function' && typeof (x as t.Mixed).name === 'string';

const make = <I, R, S extends AnyOutputSpec | undefined>(props: {
  readonly name: string | undefined;
  readonly fn: (input: I) => R | PromiseLike<R>;
  readonly settings: CacheSettings;
  readonly outputSpec: S;
  readonly site: CallSite | undefined;
}): Step<I, R, S> => {
  const self: Step<I, R, S> = Object.freeze({
    _tag: 'Step' as const,
    ...props,
    named: (name: string) => make({ ...props, name: checkName(name, 'step name') }),
    withOptions: (settings: CacheSettings) => {
      const where = `step ${props.name ?? '(unnamed)'}`;
      const valid = validateSettings(settings, where);
      if (valid._tag === 'Left') throw new StepcacheError('INVALID_OPTIONS', valid.left.message, { field: valid.left.field, ...(props.name === undefined ? {} : { step: props.name }) });
      return make({ ...props, settings: mergeSettings(props.settings, valid.right) });
    },
    outputs: <S2 extends OutputSpecFor<R>>(spec: S2) => {
      const where = `step ${props.name ?? '(unnamed)'}`;
      if (typeof spec !== 'object' || spec === null || Object.keys(spec).length === 0) {
        throw new StepcacheError('INVALID_STEP', `Outputs of ${where} must be an object naming at least one output, like { model: 'auto' }.`);
      }
      for (const [name, format] of Object.entries(spec as object)) {
        checkOutputName(name, where);
        if (format !== 'auto' && !isCodec(format)) {
          throw new StepcacheError('INVALID_STEP', `Output ${name} of ${where} must be 'auto' or an io-ts codec, got ${typeof format}.`, { field: name });
        }
      }
      return make<I, R, S2 & AnyOutputSpec>({ ...props, outputSpec: Object.freeze({ ...spec }) as S2 & AnyOutputSpec });
    },
  } as Step<I, R, S>);
  return self;
};

/**
 * Makes a step from a function of one object argument. The step is named after the function;
 * an anonymous function needs `.named(...)` before it can be used in a pipeline. A bound or
 * built-in function is refused (`INVALID_STEP`): its code cannot be fingerprinted; pass the
 * values you would bind as parameters.
 *
 * @typeParam F - the step's function: one object argument, returning a value or a Promise of one.
 *
 * @example
 * const svcTrainer = step(async function svc_trainer({ X_train, y_train, gamma }: {
 *   X_train: number[][]; y_train: number[]; gamma: number;
 * }) {
 *   return train(X_train, y_train, gamma);
 * });
 */
export function step<F extends (input: never) => unknown>(
  fn: F,
): Step<Parameters<F> extends [] ? Record<string, never> : Parameters<F>[0], Awaited<ReturnType<F>>> {
  if (typeof fn !== 'function') {
    throw new StepcacheError('INVALID_STEP', `step() takes a function, got ${typeof fn}.`);
  }
  if (isNativeCode(Function.prototype.toString.call(fn))) {
    const what = fn.name === '' ? 'a bound or built-in function' : fn.name.startsWith('bound ') ? `a bound function (${fn.name})` : `the built-in function ${fn.name}`;
    throw new StepcacheError(
      'INVALID_STEP',
      `step() was given ${what}, whose code cannot be read: its cache key could not tell one version, or one set of bound arguments, from another. ` +
        'Pass the function itself to step(), and the values you bound as parameters instead (p.call(s, { k: 3 })).',
      { field: 'fn' },
    );
  }
  const name = fn.name === '' ? undefined : checkName(fn.name, 'step name');
  const site = callSiteOf(new Error(), 1);
  if (site !== undefined) noteStepDefinedAt(site);
  return make({ name, fn: fn as never, settings: Object.freeze({}), outputSpec: undefined, site });
}

// combinators (data-last, for pipe)

/**
 * Data-last `.named`, for `pipe`.
 *
 * @example
 * import { pipe } from 'fp-ts/function';
 * const renamed = pipe(step((_: {}) => 1), named('one'));
 */
export const named =
  (name: string) =>
  <I, R, S extends AnyOutputSpec | undefined>(s: Step<I, R, S>): Step<I, R, S> =>
    s.named(name);

/**
 * Data-last `.withOptions`, for `pipe`; works on steps and pipelines.
 *
 * @example
 * import { pipe } from 'fp-ts/function';
 * const uncached = pipe(svcTrainer, withOptions({ enableCache: false }));
 */
export const withOptions =
  (settings: CacheSettings) =>
  /** Applies the settings to a step or a pipeline. */
  <X extends {
    /** The step's or pipeline's own `withOptions`. */
    withOptions(settings: CacheSettings): X;
  }>(x: X): X =>
    x.withOptions(settings);
