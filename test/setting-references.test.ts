/**
 * Settings that name things, checked against the compiled pipeline before a run.
 */
import * as E from 'fp-ts/Either';
import { checkSettingReferences, type PathKind } from '../src/cache/setting-references';
import { compilePipeline, type AnyPipeline, type PipelineGraph } from '../src/pipeline/pipeline';
import { resolveSettings, settingsLayers } from '../src/settings/settings';
import { pipeline, step, type CacheSettings } from '../src';

const fit = step(function fit({ x, rate = 0.1 }: { x: number; rate?: number }) {
  return x * rate;
});
const anyInput = step(function any_input(input: { x: number }) {
  return input.x;
});

const check = (pipe: AnyPipeline, files: Readonly<Record<string, PathKind>> = {}) => {
  const graph = compilePipeline(pipe, undefined as never);
  if (E.isLeft(graph)) throw new Error(graph.left.message);
  const g: PipelineGraph = graph.right;
  const settings = g.nodes.map((n) =>
    resolveSettings(settingsLayers({ pipelineDefaults: pipe.defaults, stepSettings: n.step.settings, runConfig: pipe.runConfig, runtime: pipe.runtime, stepName: n.name })),
  );
  return checkSettingReferences(pipe, g, settings, (f) => files[f] ?? 'missing');
};
const one = (options: CacheSettings, s = fit) => pipeline('one', (p) => ({ out: p.call(s.withOptions(options), { x: 1 }) })) as unknown as AnyPipeline;

describe('checkSettingReferences', () => {
  it('accepts names that are passed or bound by the pattern, existing files, defined dependencies', () => {
    expect(check(one({ ignoredInputs: ['x', 'rate'], files: ['a.csv'], dependsOn: { k: 0 } }), { 'a.csv': 'file' })).toEqual(E.right(undefined));
  });

  it('names the first setting that names nothing, with its path and step', () => {
    expect(check(one({ ignoredInputs: ['y'] }))).toMatchObject(E.left({ step: 'fit', field: 'ignoredInputs' }));
    expect(check(one({ dependsOn: { k: undefined } }))).toMatchObject(E.left({ step: 'fit', field: 'dependsOn.k' }));
    expect(check(one({ files: ['gone.csv'] }))).toMatchObject(E.left({ step: 'fit', field: 'files', message: expect.stringContaining('gone.csv') as unknown }));
    expect(check(one({ files: ['folder'] }), { folder: 'folder' })).toMatchObject(E.left({ field: 'files', message: expect.stringContaining('is a folder') as unknown }));
    expect(check(one({}).withRunConfig({ steps: { fitt: { refresh: true } } }))).toMatchObject(E.left({ field: 'steps.fitt' }));
  });

  it('a name that cannot be told (the parameter is not a destructuring pattern) is accepted', () => {
    expect(check(one({ ignoredInputs: ['anything'] }, anyInput as never))).toEqual(E.right(undefined));
  });
});
