import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { StepcacheError } from '../src/errors';
import { compilePipeline, pipeline, type Pipeline, type PipelineDefinitionError, type PipelineGraph, type PipelineOutputs } from '../src/pipeline/pipeline';
import { step, type Handle } from '../src/step/step';

// steps

const loader = step(function training_data_loader() {
  return { X_train: [[1, 2]], y_train: [0], X_test: [[3, 4]], y_test: [1] };
}).outputs({ X_train: 'auto', y_train: 'auto', X_test: 'auto', y_test: 'auto' });

const trainer = step(function svc_trainer({ X_train, y_train, gamma }: { X_train: number[][]; y_train: number[]; gamma: number }) {
  return X_train.length + y_train.length + gamma;
});

const evaluator = step(function evaluator({ model, X_test, y_test, verbose }: { model: number; X_test: number[][]; y_test: number[]; verbose: boolean }) {
  return verbose ? model + X_test.length + y_test.length : 0;
});

const scale = step(function scale({ x, factor }: { x: number; factor: number }) {
  return x * factor;
});

const source = step(function source() {
  return 1;
});

const trainingPipeline = pipeline('training_pipeline', (p, { gamma = 0.002 }: { gamma?: number }) => {
  const { X_train, y_train, X_test, y_test } = p.call(loader);
  const model = p.call(trainer, { X_train, y_train, gamma });
  const score = p.call(evaluator, { model, X_test, y_test, verbose: true });
  return { model, score };
});

const compiled = <P, O extends PipelineOutputs | void>(pl: Pipeline<P, O>, params: P): PipelineGraph => {
  const r = compilePipeline(pl, params);
  if (E.isLeft(r)) throw new Error(`expected a graph, got ${r.left._tag}: ${r.left.message}`);
  return r.right;
};

const definitionError = <P, O extends PipelineOutputs | void>(pl: Pipeline<P, O>, params: P): PipelineDefinitionError => {
  const r = compilePipeline(pl, params);
  if (E.isRight(r)) throw new Error(`expected a definition error, got ${r.right.nodes.length} nodes`);
  return r.left;
};

const thrown = (f: () => unknown): StepcacheError => {
  try {
    f();
  } catch (e) {
    if (e instanceof StepcacheError) return e;
    throw new Error(`expected a StepcacheError, got ${String(e)}`);
  }
  throw new Error('expected a StepcacheError, nothing was thrown');
};

describe('compilePipeline', () => {
  it('records nodes in call order with parameters and inputs separated', () => {
    const g = compiled(trainingPipeline, { gamma: 0.5 });
    expect(g.pipeline).toBe('training_pipeline');
    expect(g.nodes.map((n) => n.name)).toEqual(['training_data_loader', 'svc_trainer', 'evaluator']);
    expect(g.nodes.map((n) => n.index)).toEqual([0, 1, 2]);
    const [l, tr, ev] = g.nodes;
    expect(l?.step).toBe(loader);
    expect(l?.parameters).toEqual({});
    expect(l?.inputs).toEqual({});
    expect(l?.outputNames).toEqual(['X_train', 'y_train', 'X_test', 'y_test']);
    expect(l?.upstream).toEqual([]);
    expect(tr?.parameters).toEqual({ gamma: 0.5 });
    expect(tr?.inputs).toEqual({
      X_train: { node: 0, step: 'training_data_loader', output: 'X_train' },
      y_train: { node: 0, step: 'training_data_loader', output: 'y_train' },
    });
    expect(tr?.outputNames).toEqual(['output']);
    expect(tr?.upstream).toEqual([0]);
    expect(ev?.parameters).toEqual({ verbose: true });
    expect(ev?.inputs).toEqual({
      model: { node: 1, step: 'svc_trainer', output: 'output' },
      X_test: { node: 0, step: 'training_data_loader', output: 'X_test' },
      y_test: { node: 0, step: 'training_data_loader', output: 'y_test' },
    });
    expect(ev?.upstream).toEqual([0, 1]);
    expect(g.outputs).toEqual({
      model: { node: 1, step: 'svc_trainer', output: 'output' },
      score: { node: 2, step: 'evaluator', output: 'output' },
    });
  });

  it('the definition receives the parameters', () => {
    const seen: unknown[] = [];
    const pl = pipeline('params', (p, params: { gamma: number; tags: string[] }) => {
      seen.push(params);
      return { y: p.call(scale, { x: params.gamma, factor: params.tags.length }) };
    });
    const params = { gamma: 3, tags: ['a', 'b'] };
    const g = compiled(pl, params);
    expect(seen).toEqual([params]);
    expect(seen[0]).toBe(params);
    expect(g.nodes[0]?.parameters).toEqual({ x: 3, factor: 2 });
  });

  it('plain values of every kind become parameters, as given', () => {
    const value = { nested: [1, { a: null }], when: new Date(0), arr: new Float64Array([1]) };
    const pl = pipeline('plain', (p) => {
      p.call(scale, { x: value as never, factor: -0 });
    });
    const g = compiled(pl, {});
    expect(g.nodes[0]?.parameters.x).toBe(value);
    expect(Object.is(g.nodes[0]?.parameters.factor, -0)).toBe(true);
    expect(g.nodes[0]?.inputs).toEqual({});
  });

  it('an argument named "__proto__" is recorded as an own parameter, not as a prototype', () => {
    const args = JSON.parse('{"__proto__": 5, "x": 1, "factor": 2}') as { x: number; factor: number };
    const pl = pipeline('proto_param', (p) => {
      p.call(scale, args);
    });
    const params = compiled(pl, {}).nodes[0]?.parameters ?? {};
    expect(Object.keys(params).sort()).toEqual(['__proto__', 'factor', 'x']);
    expect(Object.getOwnPropertyDescriptor(params, '__proto__')?.value).toBe(5);
    expect(Object.getPrototypeOf(params)).toBe(Object.prototype);
  });

  it('a definition that returns nothing has no outputs', () => {
    const pl = pipeline('no_outputs', (p) => {
      p.call(source);
    });
    const g = compiled(pl, {});
    expect(g.outputs).toEqual({});
    expect(g.nodes).toHaveLength(1);
  });

  it('returns a frozen graph', () => {
    const g = compiled(trainingPipeline, {});
    expect(Object.isFrozen(g)).toBe(true);
    expect(Object.isFrozen(g.nodes)).toBe(true);
    for (const n of g.nodes) {
      expect(Object.isFrozen(n)).toBe(true);
      expect(Object.isFrozen(n.parameters)).toBe(true);
      expect(Object.isFrozen(n.inputs)).toBe(true);
    }
  });

  it('compiling twice gives equal graphs', () => {
    expect(compiled(trainingPipeline, { gamma: 1 })).toEqual(compiled(trainingPipeline, { gamma: 1 }));
  });

  it('wires random chains: every input refers to an earlier node, upstream lists exactly those (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.nat(), { maxLength: 3 }), { minLength: 1, maxLength: 8 }), (plan) => {
        const steps = plan.map((_, i) => step(function s(_: Record<string, unknown>) {
          return i;
        }).named(`s${i}`));
        const pl = pipeline('chain', (p) => {
          const handles: Array<Handle<unknown>> = [];
          plan.forEach((picks, i) => {
            const args: Record<string, unknown> = { position: i };
            if (i > 0) picks.forEach((pick, j) => (args[`in${j}`] = handles[pick % i]));
            handles.push(p.call(steps[i] as never, args as never) as Handle<unknown>);
          });
          return { last: handles[handles.length - 1] as Handle<unknown> };
        });
        const g = compiled(pl, {});
        expect(g.nodes.map((n) => n.name)).toEqual(plan.map((_, i) => `s${i}`));
        g.nodes.forEach((n, i) => {
          const picks = i === 0 ? [] : (plan[i] as number[]).map((pick) => pick % i);
          expect(n.parameters).toEqual({ position: i });
          expect(Object.values(n.inputs).map((r) => r.node)).toEqual(picks);
          expect(n.upstream).toEqual([...new Set(picks)].sort((a, b) => a - b));
          for (const r of Object.values(n.inputs)) expect(r.node).toBeLessThan(i);
        });
        expect(g.outputs.last?.node).toBe(plan.length - 1);
      }),
      { numRuns: 100 },
    );
  });
});

describe('compilePipeline: definition errors', () => {
  it('DuplicateStepName, suggesting .named', () => {
    const pl = pipeline('dup', (p) => {
      const a = p.call(scale, { x: 1, factor: 2 });
      return { b: p.call(scale, { x: a, factor: 3 }) };
    });
    const e = definitionError(pl, {});
    expect(e._tag).toBe('DuplicateStepName');
    if (e._tag === 'DuplicateStepName') {
      expect(e.step).toBe('scale');
      expect(e.pipeline).toBe('dup');
    }
    expect(e.message).toContain('scale');
    expect(e.message).toContain(".named('");
  });

  it('the same step under two names is fine', () => {
    const pl = pipeline('twice', (p) => {
      const a = p.call(scale, { x: 1, factor: 2 });
      return { b: p.call(scale.named('scale_2'), { x: a, factor: 3 }) };
    });
    expect(compiled(pl, {}).nodes.map((n) => n.name)).toEqual(['scale', 'scale_2']);
  });

  it('UnnamedStep, with its position', () => {
    const anonymous = step(((f) => f)(() => 1));
    const pl = pipeline('unnamed', (p) => {
      p.call(source);
      p.call(anonymous);
    });
    const e = definitionError(pl, {});
    expect(e._tag).toBe('UnnamedStep');
    if (e._tag === 'UnnamedStep') expect(e.position).toBe(2);
    expect(e.message).toMatch(/\.named\(/);
  });

  it('ForeignHandle: a handle from another pipeline', () => {
    let leaked: Handle<number> | undefined;
    const first = pipeline('first', (p) => {
      leaked = p.call(source);
      return { one: leaked };
    });
    compiled(first, {});
    expect(leaked).toBeDefined();
    const second = pipeline('second', (p) => {
      p.call(source);
      return { y: p.call(scale, { x: leaked as Handle<number>, factor: 2 }) };
    });
    const e = definitionError(second, {});
    expect(e._tag).toBe('ForeignHandle');
    if (e._tag === 'ForeignHandle') {
      expect(e.step).toBe('scale');
      expect(e.field).toBe('x');
    }
    expect(e.message).toContain('another pipeline');
  });

  it('ForeignHandle: a handle from an earlier compilation of the same pipeline', () => {
    let previous: Handle<number> | undefined;
    const pl = pipeline('again', (p) => {
      const s = p.call(source);
      const y = p.call(scale, { x: previous ?? s, factor: 2 });
      previous = s;
      return { y };
    });
    compiled(pl, {});
    expect(definitionError(pl, {})._tag).toBe('ForeignHandle');
  });

  it('InvalidPipelineOutputs: returning a value that is not a handle', () => {
    const pl = pipeline('bad_outputs', (p) => {
      const y = p.call(source);
      return { y, z: 5 as unknown as Handle<number> };
    });
    const e = definitionError(pl, {});
    expect(e._tag).toBe('InvalidPipelineOutputs');
    if (e._tag === 'InvalidPipelineOutputs') expect(e.field).toBe('z');
  });

  it('InvalidPipelineOutputs: returning a handle instead of an object of handles', () => {
    const pl = pipeline('bare_handle', (p) => p.call(source) as never);
    const e = definitionError(pl, {});
    expect(e._tag).toBe('InvalidPipelineOutputs');
    expect(e.message).toMatch(/object of handles/);
  });

  it('InvalidPipelineOutputs: returning a primitive', () => {
    const pl = pipeline('primitive', () => 42 as never);
    expect(definitionError(pl, {})._tag).toBe('InvalidPipelineOutputs');
  });

  it('InvalidPipelineOutputs: returning a handle from another compilation', () => {
    let leaked: Handle<number> | undefined;
    const first = pipeline('first', (p) => {
      leaked = p.call(source);
    });
    compiled(first, {});
    const second = pipeline('second', (p) => {
      p.call(source);
      return { y: leaked as Handle<number> };
    });
    const e = definitionError(second, {});
    expect(e._tag).toBe('InvalidPipelineOutputs');
    if (e._tag === 'InvalidPipelineOutputs') expect(e.field).toBe('y');
  });

  it('DefinitionThrew keeps the thrown error as the cause', () => {
    const boom = new Error('bad wiring');
    const pl = pipeline('throws', () => {
      throw boom;
    });
    const e = definitionError(pl, {});
    expect(e._tag).toBe('DefinitionThrew');
    if (e._tag === 'DefinitionThrew') expect(e.cause).toBe(boom);
    expect(e.message).toContain('bad wiring');
    expect(e.message).toContain('throws');
  });

  it('DefinitionThrew turns a thrown non-error into an Error', () => {
    const pl = pipeline('throws_string', () => {
      throw 'just a string';
    });
    const e = definitionError(pl, {});
    expect(e._tag).toBe('DefinitionThrew');
    if (e._tag === 'DefinitionThrew') {
      expect(e.cause).toBeInstanceOf(Error);
      expect(e.cause.message).toBe('just a string');
    }
  });

  it('InvalidArguments: a non-step or non-object arguments', () => {
    const notStep = pipeline('not_step', (p) => {
      p.call({ name: 'x' } as never);
    });
    expect(definitionError(notStep, {})._tag).toBe('InvalidArguments');
    const arrayArgs = pipeline('array_args', (p) => {
      p.call(scale, [1, 2] as never);
    });
    const e = definitionError(arrayArgs, {});
    expect(e._tag).toBe('InvalidArguments');
    expect(e.message).toContain('an array');
  });

  it('reports the first error, even if the definition catches it', () => {
    const pl = pipeline('swallow', (p) => {
      p.call(source);
      try {
        p.call(source);
      } catch {
        // a definition that hides the failure
      }
    });
    expect(definitionError(pl, {})._tag).toBe('DuplicateStepName');
  });
});

describe('pipeline()', () => {
  it('makes a frozen pipeline with validated defaults and empty runtime settings', () => {
    const pl = pipeline('p', () => undefined, { enableCache: false });
    expect(pl._tag).toBe('Pipeline');
    expect(pl.name).toBe('p');
    expect(pl.defaults).toEqual({ enableCache: false });
    expect(pl.runtime).toEqual({});
    expect(Object.isFrozen(pl)).toBe(true);
    expect(Object.isFrozen(pl.defaults)).toBe(true);
  });

  it.each([[''], ['1st'], ['has space'], ['a/b'], ['-x']])('rejects the name %p with INVALID_PIPELINE', (name) => {
    const e = thrown(() => pipeline(name, () => undefined));
    expect(e.code).toBe('INVALID_PIPELINE');
    expect(e.field).toBe('name');
    expect(e.message).toContain(JSON.stringify(name));
  });

  it('rejects a non-function definition', () => {
    const e = thrown(() => pipeline('p', 'not a function' as never));
    expect(e.code).toBe('INVALID_PIPELINE');
    expect(e.field).toBe('definition');
  });

  it('rejects bad defaults with INVALID_OPTIONS naming the field', () => {
    const e = thrown(() => pipeline('p', () => undefined, { enableCache: 'yes' } as never));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.field).toBe('enableCache');
    expect(e.message).toContain('pipeline p');
    const unknown = thrown(() => pipeline('p', () => undefined, { retry: 3 } as never));
    expect(unknown.code).toBe('INVALID_OPTIONS');
    expect(unknown.field).toBe('retry');
  });
});

describe('Pipeline.withOptions()', () => {
  it('returns a new frozen pipeline with merged runtime settings and leaves the original unchanged', () => {
    const original = pipeline('p', () => undefined, { enableCache: true });
    const off = original.withOptions({ enableCache: false });
    expect(off).not.toBe(original);
    expect(Object.isFrozen(off)).toBe(true);
    expect(off.runtime).toEqual({ enableCache: false });
    expect(off.defaults).toEqual({ enableCache: true });
    expect(off.name).toBe('p');
    expect(off.definition).toBe(original.definition);
    expect(original.runtime).toEqual({});
    const kept = off.withOptions({ enableCache: undefined });
    expect(kept.runtime).toEqual({ enableCache: false });
    expect(off.withOptions({ enableCache: true }).runtime).toEqual({ enableCache: true });
    expect(off.runtime).toEqual({ enableCache: false });
  });

  it('merges like mergeSettings over any sequence (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom<boolean | undefined>(true, false, undefined), { maxLength: 5 }), (values) => {
        const base = pipeline('p', () => undefined);
        const pl = values.reduce((acc, v) => acc.withOptions({ enableCache: v }), base);
        const defined = values.filter((v): v is boolean => v !== undefined);
        expect(pl.runtime.enableCache).toBe(defined[defined.length - 1]);
        expect(base.runtime).toEqual({});
      }),
      { numRuns: 50 },
    );
  });

  it('rejects bad values with INVALID_OPTIONS naming the field', () => {
    const pl = pipeline('p', () => undefined);
    const e = thrown(() => pl.withOptions({ enableCache: 'yes' } as never));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.field).toBe('enableCache');
    expect(thrown(() => pl.withOptions({ nope: true } as never)).field).toBe('nope');
  });
});
