/**
 * Settings that name things, checked against what they name before a run executes anything: an
 * `ignoredInputs` name that no input or parameter of the step has, a `dependsOn` entry whose value
 * is `undefined` (a misspelt or circular import), a `files` path that does not exist, a `steps`
 * section of the run config (or of the runtime options) naming a step the pipeline does not have.
 * Each would otherwise be accepted silently and do nothing.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import type { AnyPipeline, GraphNode, PipelineGraph } from '../pipeline/pipeline';
import { settingsForStep, type CacheSettingName, type PipelineSettings, type SettingSource, type SettingsResolution } from '../settings/settings';
import { parameterDefaultsOf } from './parameter-defaults';

// model

/**
 * A setting that names nothing: the step it applies to (absent for a `steps` section), the path
 * of the setting, and a message naming both and what to do.
 *
 * @example
 * const e: UnmatchedReference = { step: 'svc_trainer', field: 'ignoredInputs', message: 'Step svc_trainer ignores input progres, which it does not have; ...' };
 */
export interface UnmatchedReference {
  readonly step?: string;
  readonly field: string;
  readonly message: string;
}

/**
 * What is at a path: a file, a folder, or nothing.
 *
 * @example
 * const kind: PathKind = 'missing';
 */
export type PathKind = 'file' | 'folder' | 'missing';

// checking

const WHERE: Readonly<Record<SettingSource, string>> = {
  default: 'by default',
  pipeline: 'in the pipeline settings',
  step: 'in the step settings',
  runConfig: 'in the run config',
  runtime: 'in the runtime options',
  runtimeStep: 'in the runtime options for this step',
};

/** The pipeline-level settings object of a layer, when the layer is one. */
const pipelineLayer = (pipe: AnyPipeline, source: SettingSource): PipelineSettings | undefined =>
  source === 'pipeline' ? pipe.defaults : source === 'runConfig' ? pipe.runConfig : source === 'runtime' ? pipe.runtime : undefined;

/** Whether a resolved setting was given for every step of the pipeline (not in a `steps` section, nor on the step). */
const givenPipelineWide = (pipe: AnyPipeline, node: GraphNode, resolution: SettingsResolution, name: CacheSettingName): boolean => {
  const layer = pipelineLayer(pipe, resolution.sources[name]);
  return layer !== undefined && settingsForStep(layer.steps, node.name)[name] === undefined;
};

/** Whether a name is one of a node's inputs or parameters, passed or declared; `undefined` when that cannot be told. */
const hasInput = (node: GraphNode, name: string): boolean | undefined => {
  if (Object.hasOwn(node.inputs, name) || Object.hasOwn(node.parameters, name)) return true;
  const declared = parameterDefaultsOf(node.step.fn).names;
  return declared === undefined ? undefined : declared.has(name);
};

const listOrNone = (names: readonly string[]): string => (names.length === 0 ? '(none)' : names.join(', '));

/**
 * The first setting of a run that names nothing, or `Right` when every one names something.
 * `pathKind` says what is at a path (relative to the working directory).
 *
 * @example
 * checkSettingReferences(pipe, graph, settings, (p) => (fs.existsSync(p) ? 'file' : 'missing'));
 * // Left({ step: 'read_labels', field: 'files', message: 'Step read_labels lists file data/labls.csv in files, ...' })
 */
export const checkSettingReferences = (
  pipe: AnyPipeline,
  graph: PipelineGraph,
  settings: readonly SettingsResolution[],
  pathKind: (file: string) => PathKind,
): E.Either<UnmatchedReference, void> => {
  const stepNames = graph.nodes.map((n) => n.name);
  for (const [where, sections] of [
    ['run config', pipe.runConfig.steps],
    ['runtime options', pipe.runtime.steps],
  ] as const) {
    for (const name of Object.keys(sections ?? {})) {
      if (stepNames.includes(name)) continue;
      return E.left({ field: `steps.${name}`, message: `The ${where} set steps.${name}, but pipeline ${graph.pipeline} has no step ${name}; its steps are: ${listOrNone(stepNames)}.` });
    }
  }
  const wideIgnored = new Map<string, { readonly source: SettingSource; matched: boolean }>();
  const checkedFiles = new Set<string>();
  for (const node of graph.nodes) {
    const resolution = settings[node.index] as SettingsResolution;
    const { ignoredInputs, dependsOn, files } = resolution.settings;
    const wide = givenPipelineWide(pipe, node, resolution, 'ignoredInputs');
    for (const name of ignoredInputs ?? []) {
      const found = hasInput(node, name);
      if (wide) {
        const seen = wideIgnored.get(name) ?? { source: resolution.sources.ignoredInputs, matched: false };
        seen.matched ||= found !== false;
        wideIgnored.set(name, seen);
      } else if (found === false) {
        const known = [...new Set([...Object.keys(node.inputs), ...Object.keys(node.parameters), ...(parameterDefaultsOf(node.step.fn).names ?? [])])].sort();
        return E.left({
          step: node.name,
          field: 'ignoredInputs',
          message: `Step ${node.name} ignores ${name} (ignoredInputs, ${WHERE[resolution.sources.ignoredInputs]}), but it has no input or parameter ${name}; its inputs and parameters are: ${listOrNone(known)}.`,
        });
      }
    }
    for (const [name, value] of Object.entries(dependsOn ?? {})) {
      if (value !== undefined) continue;
      return E.left({
        step: node.name,
        field: `dependsOn.${name}`,
        message: `dependsOn.${name} of step ${node.name} (${WHERE[resolution.sources.dependsOn]}) is undefined: a misspelt or circular import? Give the function or value the step depends on, or remove the entry.`,
      });
    }
    for (const file of files ?? []) {
      if (checkedFiles.has(file)) continue;
      checkedFiles.add(file);
      const kind = pathKind(file);
      if (kind === 'file') continue;
      return E.left({
        step: node.name,
        field: 'files',
        message:
          kind === 'missing'
            ? `Step ${node.name} lists file ${file} in files (${WHERE[resolution.sources.files]}), but there is no such file (from ${process.cwd()}); fix the path, or create the file.`
            : `Step ${node.name} lists ${file} in files (${WHERE[resolution.sources.files]}), but it is a folder; list the files in it that the step reads.`,
      });
    }
  }
  for (const [name, { source, matched }] of wideIgnored) {
    if (matched) continue;
    return E.left({ field: 'ignoredInputs', message: `ignoredInputs (${WHERE[source]}) names ${name}, but no step of pipeline ${graph.pipeline} has an input or parameter ${name}.` });
  }
  return E.right(undefined);
};
