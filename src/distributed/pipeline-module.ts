/**
 * The steps a worker can execute: those of the pipeline module it loads. A module exposes its
 * pipelines by exporting them (any export that is a Pipeline value, the default export
 * included); a worker finds a job's step by pipeline name and step name in the graph of that
 * pipeline compiled with its default parameters, and else among the module's exported steps
 * (for a pipeline whose definition needs parameters to compile).
 *
 * @packageDocumentation
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as E from 'fp-ts/Either';
import { StepcacheError, toError } from '../errors';
import { compilePipeline, type AnyPipeline, type GraphNode, type PipelineGraph } from '../pipeline/pipeline';
import { resolveSettings, settingsLayers } from '../settings/settings';
import { DEFAULT_OUTPUT, type AnyStep } from '../step/step';

// model

/**
 * A step a worker found for a job: a node to execute (a compiled node, or one made from an
 * exported step), the formats of the outputs of its pipeline's steps (to read inputs), and the
 * version its settings give it, if any.
 *
 * @example
 * const found = findStep(module, 'training_pipeline', 'svc_trainer');
 * if (found._tag === 'Right') found.right.node.step.fn;
 */
export interface FoundStep {
  readonly node: GraphNode;
  readonly graph: PipelineGraph | undefined;
  readonly version: string | undefined;
}

/**
 * What a worker loaded: the module's pipelines and steps, by name.
 *
 * @example
 * const loaded = await loadPipelineModule('./pipelines.js');
 * [...loaded.pipelines.keys()]; // ['training_pipeline']
 */
export interface PipelineModule {
  readonly specifier: string;
  readonly pipelines: ReadonlyMap<string, AnyPipeline>;
  readonly steps: ReadonlyMap<string, AnyStep>;
}

// utils

const isPipeline = (x: unknown): x is AnyPipeline => typeof x === 'object' && x !== null && (x as { _tag?: unknown })._tag === 'Pipeline';
const isStep = (x: unknown): x is AnyStep => typeof x === 'object' && x !== null && (x as { _tag?: unknown })._tag === 'Step';

/** A file path (relative to `cwd`) as a URL to import; a package name as it is. */
const importable = (specifier: string, cwd: string): string =>
  specifier.startsWith('.') || path.isAbsolute(specifier) ? pathToFileURL(path.resolve(cwd, specifier)).href : specifier;

// loading

/**
 * Indexes the pipelines and steps a module exports (its default export too, and the values of an
 * exported object of pipelines).
 *
 * @example
 * const loaded = pipelineModuleOf('inline', { trainingPipeline, svcTrainer });
 */
export const pipelineModuleOf = (specifier: string, exports: Readonly<Record<string, unknown>>): PipelineModule => {
  const pipelines = new Map<string, AnyPipeline>();
  const steps = new Map<string, AnyStep>();
  const visit = (value: unknown, depth: number): void => {
    if (isPipeline(value)) pipelines.set(value.name, value);
    else if (isStep(value)) {
      if (value.name !== undefined) steps.set(value.name, value);
    } else if (depth < 2 && typeof value === 'object' && value !== null) {
      for (const inner of Object.values(value)) visit(inner, depth + 1);
    }
  };
  for (const value of Object.values(exports)) visit(value, 0);
  return { specifier, pipelines, steps };
};

/**
 * Loads a pipeline module: a file (absolute, or relative to `cwd`) or a package name. Fails with
 * `INVALID_OPTIONS` naming the module when it cannot be loaded or exports no pipeline.
 *
 * @example
 * const loaded = await loadPipelineModule('./dist/pipelines.js');
 */
export const loadPipelineModule = async (specifier: string, cwd: string = process.cwd()): Promise<PipelineModule> => {
  let exports: Record<string, unknown>;
  try {
    exports = (await import(importable(specifier, cwd))) as Record<string, unknown>;
  } catch (e) {
    throw new StepcacheError('INVALID_OPTIONS', `The pipeline module ${specifier} could not be loaded: ${toError(e).message}`, { field: 'module', cause: e });
  }
  const loaded = pipelineModuleOf(specifier, exports);
  if (loaded.pipelines.size === 0 && loaded.steps.size === 0) {
    throw new StepcacheError('INVALID_OPTIONS', `The pipeline module ${specifier} exports no pipeline and no step: export the pipelines its workers execute (export const training = pipeline(...)).`, { field: 'module' });
  }
  return loaded;
};

// finding a step

const compiled = new WeakMap<AnyPipeline, PipelineGraph | undefined>();
const graphOf = (pipe: AnyPipeline): PipelineGraph | undefined => {
  if (compiled.has(pipe)) return compiled.get(pipe);
  let graph: PipelineGraph | undefined;
  try {
    const result = compilePipeline(pipe, {} as never);
    graph = E.isRight(result) ? result.right : undefined;
  } catch {
    graph = undefined;
  }
  compiled.set(pipe, graph);
  return graph;
};

const versionOf = (pipe: AnyPipeline | undefined, s: AnyStep, name: string): string | undefined =>
  resolveSettings(settingsLayers({ pipelineDefaults: pipe?.defaults ?? {}, stepSettings: s.settings, runConfig: pipe?.runConfig ?? {}, runtime: pipe?.runtime ?? {}, stepName: name })).settings.version;

/**
 * The names of the steps of a pipeline of the module, as compiled with its default parameters
 * (none when it needs parameters to compile).
 *
 * @example
 * stepNames(loaded, 'training_pipeline'); // ['training_data_loader', 'svc_trainer']
 */
export const stepNames = (loaded: PipelineModule, pipelineName: string): string[] => {
  const pipe = loaded.pipelines.get(pipelineName);
  return pipe === undefined ? [] : (graphOf(pipe)?.nodes.map((n) => n.name) ?? []);
};

/**
 * The step of a job, by pipeline and step name; `CODE_MISMATCH` naming the module when the
 * module has no such step (the worker runs other code than the client).
 *
 * @example
 * const found = findStep(loaded, 'training_pipeline', 'svc_trainer');
 */
export const findStep = (loaded: PipelineModule, pipelineName: string, stepName: string): E.Either<StepcacheError, FoundStep> => {
  const pipe = loaded.pipelines.get(pipelineName);
  const graph = pipe === undefined ? undefined : graphOf(pipe);
  const node = graph?.nodes.find((n) => n.name === stepName);
  if (node !== undefined) return E.right({ node, graph, version: versionOf(pipe, node.step, stepName) });
  const s = loaded.steps.get(stepName);
  if (s !== undefined) {
    const outputNames = s.outputSpec === undefined ? [DEFAULT_OUTPUT] : Object.keys(s.outputSpec);
    const made: GraphNode = Object.freeze({ index: 0, name: stepName, step: s, parameters: {}, inputs: {}, outputNames, upstream: [] });
    return E.right({ node: made, graph, version: versionOf(pipe, s, stepName) });
  }
  return E.left(
    new StepcacheError(
      'CODE_MISMATCH',
      `This worker's module ${loaded.specifier} has no step ${stepName} in pipeline ${pipelineName} (it has pipelines ${[...loaded.pipelines.keys()].join(', ') || '(none)'}); deploy the same pipeline code to clients and workers.`,
      { step: stepName },
    ),
  );
};
