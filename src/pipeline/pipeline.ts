/**
 * Pipelines: a name, a definition that wires steps together with `p.call`, and settings.
 * A pipeline is a frozen value; {@link compilePipeline} turns it and its parameters into a
 * {@link PipelineGraph}, the DAG every interpreter (runner, planner, renderer) reads.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import { StepcacheError, toError } from '../errors';
import { mergePipelineSettings, validatePipelineSettings, type PipelineSettings } from '../settings/settings';
import { DEFAULT_OUTPUT, NAME_PATTERN, type AnyOutputSpec, type AnyStep, type Handle, type Step, type StepHandles } from '../step/step';
import { defineOwn } from '../utils/own-property';

// model

/**
 * A step input as `p.call` takes it: a plain value (a parameter) or a handle (an input artifact).
 *
 * @example
 * const args: Wired<{ X: number[]; gamma: number }> = { X: handleOfX, gamma: 0.002 };
 */
export type Wired<I> = { readonly [K in keyof I]: I[K] | Handle<I[K]> };

/**
 * The arguments of `p.call`: optional when the step needs no input.
 *
 * @example
 * const args: CallArgs<{ gamma: number }> = [{ gamma: 0.002 }];
 */
export type CallArgs<I> = {} extends I ? [args?: Wired<I>] : [args: Wired<I>];

/**
 * What a pipeline definition receives to wire steps.
 *
 * @example
 * pipeline('p', (p) => {
 *   const raw = p.call(loader);
 *   return { clean: p.call(cleaner, { raw }) };
 * });
 */
export interface PipelineBuilder {
  /** Adds a step to the pipeline; plain values become parameters, handles become inputs. */
  call<I, R, S extends AnyOutputSpec | undefined>(s: Step<I, R, S>, ...args: CallArgs<I>): StepHandles<R, S>;
}

/**
 * What a pipeline definition may return: named handles, the pipeline's outputs.
 *
 * @example
 * pipeline('p', (p) => ({ model: p.call(trainer) })); // returns PipelineOutputs
 */
export type PipelineOutputs = { readonly [name: string]: Handle<unknown> };

/**
 * A pipeline: frozen; `withOptions` returns a copy with runtime settings that beat every step setting.
 *
 * @example
 * const trainingPipeline = pipeline('training_pipeline', (p, { gamma = 0.002 }: { gamma?: number }) => {
 *   const { X_train, y_train } = p.call(trainingDataLoader);
 *   return { model: p.call(svcTrainer, { X_train, y_train, gamma }) };
 * });
 */
export interface Pipeline<P, O extends PipelineOutputs | void> {
  readonly _tag: 'Pipeline';
  readonly name: string;
  /** Wires the steps with `p.call`; run by every interpreter to get the DAG for some parameters. */
  readonly definition: (p: PipelineBuilder, params: P) => O;
  /** Pipeline defaults (the lowest precedence layer; `steps` holds defaults for single steps). */
  readonly defaults: PipelineSettings;
  /** Settings from a run config file (above every step setting, below the runtime options; `steps` holds them for single steps). */
  readonly runConfig: PipelineSettings;
  /** Runtime overrides (above every step setting and the run config; `steps` holds overrides for single steps, above all). */
  readonly runtime: PipelineSettings;
  /** A copy whose runtime settings are merged with these; they override every step setting. */
  withOptions(settings: PipelineSettings): Pipeline<P, O>;
  /** A copy whose run config layer is merged with these settings (what `applyRunConfig` uses). */
  withRunConfig(settings: PipelineSettings): Pipeline<P, O>;
}

/**
 * A pipeline of any type.
 *
 * @example
 * const pipelines: AnyPipeline[] = [trainingPipeline, evaluationPipeline];
 */
export type AnyPipeline = Pipeline<never, PipelineOutputs | void>;

/**
 * The parameters type of a pipeline.
 *
 * @example
 * type Params = PipelineParams<typeof trainingPipeline>; // { gamma?: number }
 */
export type PipelineParams<X> = X extends Pipeline<infer P, infer _O> ? P : never;

/**
 * The output values of a pipeline, by name.
 *
 * @example
 * type Outputs = PipelineOutputValues<typeof trainingPipeline>; // { model: Model }
 */
export type PipelineOutputValues<X> = X extends Pipeline<infer _P, infer O>
  ? O extends PipelineOutputs
    ? { readonly [K in keyof O]: O[K]['_A'] }
    : {}
  : never;

/** Where an input comes from: an output of an earlier node. */
export interface OutputRef {
  readonly node: number;
  readonly step: string;
  readonly output: string;
}

/** One step invocation in a compiled pipeline. */
export interface GraphNode {
  readonly index: number;
  readonly name: string;
  readonly step: AnyStep;
  /** Plain values passed to the step, by input name. */
  readonly parameters: Readonly<Record<string, unknown>>;
  /** Handles passed to the step, by input name. */
  readonly inputs: Readonly<Record<string, OutputRef>>;
  /** The names of the step's outputs. */
  readonly outputNames: readonly string[];
  /** Indices of the nodes this one reads from. */
  readonly upstream: readonly number[];
}

/** A compiled pipeline: nodes in a topological order (the order of `p.call`). */
export interface PipelineGraph {
  readonly pipeline: string;
  readonly nodes: readonly GraphNode[];
  readonly outputs: Readonly<Record<string, OutputRef>>;
}

/**
 * One edge of a pipeline's DAG: output `output` of step `from` is input `input` of step `to`.
 *
 * @example
 * const e: GraphEdge = { from: 'training_data_loader', output: 'X_train', to: 'svc_trainer', input: 'X_train' };
 */
export interface GraphEdge {
  readonly from: string;
  readonly output: string;
  readonly to: string;
  readonly input: string;
}

/**
 * Why a pipeline definition is invalid.
 *
 * @example
 * const e: PipelineDefinitionError = { _tag: 'DuplicateStepName', pipeline: 'p', step: 'loader', message: '...' };
 */
export type PipelineDefinitionError =
  | { readonly _tag: 'DuplicateStepName'; readonly pipeline: string; readonly step: string; readonly message: string }
  | { readonly _tag: 'UnnamedStep'; readonly pipeline: string; readonly position: number; readonly message: string }
  | { readonly _tag: 'ForeignHandle'; readonly pipeline: string; readonly step: string; readonly field: string; readonly message: string }
  | { readonly _tag: 'InvalidArguments'; readonly pipeline: string; readonly step: string; readonly message: string }
  | { readonly _tag: 'InvalidPipelineOutputs'; readonly pipeline: string; readonly field: string; readonly message: string }
  | { readonly _tag: 'DefinitionThrew'; readonly pipeline: string; readonly cause: Error; readonly message: string };

// constructors

const makePipeline = <P, O extends PipelineOutputs | void>(props: {
  readonly name: string;
  readonly definition: (p: PipelineBuilder, params: P) => O;
  readonly defaults: PipelineSettings;
  readonly runConfig: PipelineSettings;
  readonly runtime: PipelineSettings;
}): Pipeline<P, O> =>
  Object.freeze({
    _tag: 'Pipeline' as const,
    ...props,
    withOptions: (settings: PipelineSettings) => {
      const valid = validatePipelineSettings(settings, `pipeline ${props.name} (withOptions)`);
      if (valid._tag === 'Left') throw new StepcacheError('INVALID_OPTIONS', valid.left.message, { field: valid.left.field });
      return makePipeline({ ...props, runtime: mergePipelineSettings(props.runtime, valid.right) });
    },
    withRunConfig: (settings: PipelineSettings) => {
      const valid = validatePipelineSettings(settings, `pipeline ${props.name} (run config)`);
      if (valid._tag === 'Left') throw new StepcacheError('INVALID_OPTIONS', valid.left.message, { field: valid.left.field });
      return makePipeline({ ...props, runConfig: mergePipelineSettings(props.runConfig, valid.right) });
    },
  });

/**
 * Defines a pipeline. The third argument holds the pipeline defaults, the lowest precedence layer.
 *
 * @example
 * const p = pipeline('mnist_pipeline', (p, { epochs = 1 }: { epochs?: number }) => {
 *   const { images, labels } = p.call(importer);
 *   const model = p.call(trainer, { images, labels, epochs });
 *   return { model };
 * }, { enableCache: true });
 */
export function pipeline<P = {}, O extends PipelineOutputs | void = void>(
  name: string,
  definition: (p: PipelineBuilder, params: P) => O,
  defaults: PipelineSettings = {},
): Pipeline<P, O> {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new StepcacheError('INVALID_PIPELINE', `Invalid pipeline name ${JSON.stringify(name)}: use letters, digits, "_", "." or "-", starting with a letter or "_".`, { field: 'name' });
  }
  if (typeof definition !== 'function') {
    throw new StepcacheError('INVALID_PIPELINE', `The definition of pipeline ${name} must be a function (p, params) => outputs.`, { field: 'definition' });
  }
  const valid = validatePipelineSettings(defaults, `pipeline ${name}`);
  if (valid._tag === 'Left') throw new StepcacheError('INVALID_OPTIONS', valid.left.message, { field: valid.left.field });
  return makePipeline({ name, definition, defaults: valid.right, runConfig: Object.freeze({}), runtime: Object.freeze({}) });
}

// compilation

class DefinitionFailure {
  constructor(readonly error: PipelineDefinitionError) {}
}

const isHandle = (x: unknown): x is Handle<unknown> =>
  typeof x === 'object' && x !== null && (x as { _tag?: unknown })._tag === 'Handle';

/**
 * Runs a pipeline's definition with its parameters and records the DAG. Pure as long as the
 * definition is; returns the first definition error found as a value.
 *
 * @example
 * const graph = compilePipeline(trainingPipeline, { gamma: 0.01 });
 * if (graph._tag === 'Right') graph.right.nodes.map((n) => n.name); // ['training_data_loader', 'svc_trainer']
 */
export const compilePipeline = <P, O extends PipelineOutputs | void>(
  pipe: Pipeline<P, O>,
  params: P,
): E.Either<PipelineDefinitionError, PipelineGraph> => {
  const scope = {};
  const nodes: GraphNode[] = [];
  const byName = new Map<string, GraphNode>();
  let firstError: PipelineDefinitionError | undefined;
  const fail = (error: PipelineDefinitionError): never => {
    firstError ??= error; // kept even if the definition catches what is thrown
    throw new DefinitionFailure(error);
  };

  const builder: PipelineBuilder = {
    call: ((s: AnyStep, args?: Record<string, unknown>) => {
      if (typeof s !== 'object' || s === null || (s as { _tag?: unknown })._tag !== 'Step') {
        return fail({ _tag: 'InvalidArguments', pipeline: pipe.name, step: `#${nodes.length + 1}`, message: `p.call in pipeline ${pipe.name} takes a step made with step(fn), got ${typeof s}.` });
      }
      const name = s.name;
      if (name === undefined) {
        return fail({
          _tag: 'UnnamedStep',
          pipeline: pipe.name,
          position: nodes.length + 1,
          message: `Step #${nodes.length + 1} of pipeline ${pipe.name} has no name: its function is anonymous. Name it with step(fn).named('...') or use a named function.`,
        });
      }
      if (byName.has(name)) {
        return fail({
          _tag: 'DuplicateStepName',
          pipeline: pipe.name,
          step: name,
          message: `Step name ${name} is used twice in pipeline ${pipe.name}; give the second use its own name with .named('${name}_2').`,
        });
      }
      if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
        return fail({ _tag: 'InvalidArguments', pipeline: pipe.name, step: name, message: `The arguments of step ${name} in pipeline ${pipe.name} must be an object, got ${Array.isArray(args) ? 'an array' : typeof args}.` });
      }
      const parameters: Record<string, unknown> = {};
      const inputs: Record<string, OutputRef> = {};
      const upstream: number[] = []; // sorted and without repeats below
      const fields = args === undefined ? [] : Object.keys(args);
      for (const field of fields) {
        const value = (args as Record<string, unknown>)[field];
        if (isHandle(value)) {
          const source = byName.get(value.step);
          if (value.scope !== scope || source === undefined) {
            return fail({
              _tag: 'ForeignHandle',
              pipeline: pipe.name,
              step: name,
              field,
              message: `Input ${field} of step ${name} is a handle from another pipeline (output ${value.output} of ${value.step}); handles can only be used in the pipeline definition that created them.`,
            });
          }
          defineOwn(inputs, field, Object.freeze({ node: source.index, step: source.name, output: value.output }));
          upstream.push(source.index);
        } else {
          defineOwn(parameters, field, value);
        }
      }
      const outputNames = s.outputSpec === undefined ? [DEFAULT_OUTPUT] : Object.keys(s.outputSpec);
      const node: GraphNode = Object.freeze({
        index: nodes.length,
        name,
        step: s,
        parameters: Object.freeze(parameters),
        inputs: Object.freeze(inputs),
        outputNames: Object.freeze(outputNames),
        upstream: Object.freeze(upstream.length > 1 ? [...new Set(upstream.sort((a, b) => a - b))] : upstream),
      });
      nodes.push(node);
      byName.set(name, node);
      const handle = (output: string): Handle<unknown> => Object.freeze({ _tag: 'Handle', step: name, output, scope } as Handle<unknown>);
      if (s.outputSpec === undefined) return handle(DEFAULT_OUTPUT);
      return Object.freeze(Object.fromEntries(outputNames.map((o) => [o, handle(o)])));
    }) as PipelineBuilder['call'],
  };

  let returned: unknown;
  try {
    returned = pipe.definition(builder, params);
  } catch (e) {
    if (firstError !== undefined) return E.left(firstError);
    const cause = toError(e);
    return E.left({ _tag: 'DefinitionThrew', pipeline: pipe.name, cause, message: `The definition of pipeline ${pipe.name} threw: ${cause.message}` });
  }

  if (firstError !== undefined) return E.left(firstError);
  const outputs: Record<string, OutputRef> = {};
  if (returned !== undefined) {
    if (typeof returned !== 'object' || returned === null || isHandle(returned)) {
      return E.left({ _tag: 'InvalidPipelineOutputs', pipeline: pipe.name, field: '', message: `The definition of pipeline ${pipe.name} must return nothing or an object of handles, like { model }.` });
    }
    for (const [field, value] of Object.entries(returned)) {
      const source = isHandle(value) ? byName.get(value.step) : undefined;
      if (!isHandle(value) || value.scope !== scope || source === undefined) {
        return E.left({ _tag: 'InvalidPipelineOutputs', pipeline: pipe.name, field, message: `Output ${field} of pipeline ${pipe.name} must be a handle returned by p.call in this pipeline.` });
      }
      outputs[field] = Object.freeze({ node: source.index, step: source.name, output: value.output });
    }
  }
  return E.right(Object.freeze({ pipeline: pipe.name, nodes: Object.freeze(nodes), outputs: Object.freeze(outputs) }));
};

/**
 * The edges of a compiled pipeline, in pipeline order (by consuming step, then by input): what
 * a run records, and what the pictures of a run draw.
 *
 * @example
 * const graph = compilePipeline(trainingPipeline, {});
 * if (graph._tag === 'Right') graphEdges(graph.right);
 * // [{ from: 'training_data_loader', output: 'X_train', to: 'svc_trainer', input: 'X_train' }, ...]
 */
export const graphEdges = (graph: PipelineGraph): GraphEdge[] =>
  graph.nodes.flatMap((n) => Object.entries(n.inputs).map(([input, ref]) => ({ from: ref.step, output: ref.output, to: n.name, input })));
