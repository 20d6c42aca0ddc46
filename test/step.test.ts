import { pipe } from 'fp-ts/function';
import fc from 'fast-check';
import * as t from 'io-ts';
import { createRunner, pipeline, silentLogger } from '../src';
import { StepcacheError } from '../src/errors';
import type { CacheSettings } from '../src/settings/settings';
import { DEFAULT_OUTPUT, NAME_PATTERN, named, step, withOptions, type AnyOutputSpec, type Step } from '../src/step/step';
import { removeDir, tempDir } from './support/fixtures';

const thrown = (f: () => unknown): StepcacheError => {
  try {
    f();
  } catch (e) {
    if (e instanceof StepcacheError) return e;
    throw new Error(`expected a StepcacheError, got ${String(e)}`);
  }
  throw new Error('expected a StepcacheError, nothing was thrown');
};

const snapshot = <I, R, S extends AnyOutputSpec | undefined>(s: Step<I, R, S>) => ({ name: s.name, settings: { ...s.settings }, outputSpec: s.outputSpec === undefined ? undefined : { ...s.outputSpec } });

const makeTrainer = () =>
  step(function svc_trainer({ x, gamma }: { x: number[]; gamma: number }) {
    return { model: x.map((v) => v * gamma), score: 1 };
  });

const validName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,12}$/);
const invalidName = fc.oneof(
  fc.string().filter((s) => !NAME_PATTERN.test(s)),
  fc.constantFrom('', '1abc', '-x', '.x', 'has space', 'a/b', 'a:b', 'é', 'bound f', 'a\nb'),
);

describe('step()', () => {
  it("takes the function's name", () => {
    const s = makeTrainer();
    expect(s._tag).toBe('Step');
    expect(s.name).toBe('svc_trainer');
    expect(s.outputSpec).toBeUndefined();
    expect(s.settings).toEqual({});
    expect(DEFAULT_OUTPUT).toBe('output');
  });

  it('takes the name of a const-bound arrow function', () => {
    const load_data = () => [1, 2];
    expect(step(load_data).name).toBe('load_data');
  });

  it('keeps the function as it is', () => {
    const fn = ({ a }: { a: number }) => a + 1;
    expect(step(fn).fn).toBe(fn);
  });

  it('an anonymous function gives name undefined; .named sets it', () => {
    const anonymous = step(((f) => f)(({ a }: { a: number }) => a));
    expect(anonymous.name).toBeUndefined();
    const namedStep = anonymous.named('x');
    expect(namedStep.name).toBe('x');
  });

  it('returns a frozen step', () => {
    const s = makeTrainer();
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.settings)).toBe(true);
    expect(() => {
      (s as { name: string | undefined }).name = 'changed';
    }).toThrow(TypeError);
    expect(s.name).toBe('svc_trainer');
  });

  it('rejects a function whose name is not a valid step name, with INVALID_STEP', () => {
    const bound = function train() {
      return 1;
    }.bind(null);
    const e = thrown(() => step(bound));
    expect(e.code).toBe('INVALID_STEP');
    expect(e.message).toContain('bound train');
  });

  it('rejects a non-function with INVALID_STEP', () => {
    expect(thrown(() => step(42 as never)).code).toBe('INVALID_STEP');
    expect(thrown(() => step({} as never)).message).toMatch(/takes a function, got object/);
  });
});

describe('.named()', () => {
  it('accepts every valid name (property)', () => {
    fc.assert(
      fc.property(validName, (n) => {
        expect(makeTrainer().named(n).name).toBe(n);
      }),
      { numRuns: 100 },
    );
  });

  it('rejects every invalid name with INVALID_STEP (property)', () => {
    fc.assert(
      fc.property(invalidName, (n) => {
        const e = thrown(() => makeTrainer().named(n));
        expect(e).toBeInstanceOf(StepcacheError);
        expect(e.code).toBe('INVALID_STEP');
        expect(e.message).toContain(JSON.stringify(n));
      }),
      { numRuns: 100 },
    );
  });

  it('rejects a non-string name', () => {
    expect(thrown(() => makeTrainer().named(undefined as never)).code).toBe('INVALID_STEP');
    expect(thrown(() => makeTrainer().named(3 as never)).code).toBe('INVALID_STEP');
  });
});

describe('chained methods return new frozen steps and leave the old one unchanged', () => {
  const Model = t.array(t.number, 'Model');
  const chains: Array<[string, (s: ReturnType<typeof makeTrainer>) => Step<never, unknown, AnyOutputSpec | undefined>]> = [
    ['named', (s) => s.named('renamed') as never],
    ['withOptions', (s) => s.withOptions({ enableCache: false }) as never],
    ['outputs', (s) => s.outputs({ model: Model, score: 'auto' }) as never],
  ];

  it.each(chains)('%s', (_label, chain) => {
    const original = makeTrainer().withOptions({ enableCache: true });
    const before = snapshot(original);
    const next = chain(original);
    expect(next).not.toBe(original);
    expect(Object.isFrozen(next)).toBe(true);
    expect(Object.isFrozen(next.settings)).toBe(true);
    expect(snapshot(original)).toEqual(before);
    expect(snapshot(next)).not.toEqual(before);
    expect(next.fn).toBe(original.fn);
  });

  it('each method keeps what the others set', () => {
    const s = makeTrainer().named('a').withOptions({ enableCache: false }).outputs({ model: 'auto', score: 'auto' }).named('b');
    expect(s.name).toBe('b');
    expect(s.settings).toEqual({ enableCache: false });
    expect(s.outputSpec).toEqual({ model: 'auto', score: 'auto' });
    expect(Object.isFrozen(s.outputSpec)).toBe(true);
  });

  it('arbitrary chains never change an earlier step (property)', () => {
    type Op = { kind: 'named'; name: string } | { kind: 'withOptions'; settings: CacheSettings } | { kind: 'outputs'; names: string[] };
    const op: fc.Arbitrary<Op> = fc.oneof(
      validName.map((name) => ({ kind: 'named' as const, name })),
      fc.constantFrom<CacheSettings>({}, { enableCache: true }, { enableCache: false }, { enableCache: undefined }).map((settings) => ({ kind: 'withOptions' as const, settings })),
      fc.uniqueArray(validName, { minLength: 1, maxLength: 3 }).map((names) => ({ kind: 'outputs' as const, names })),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 6 }), (ops) => {
        let current = makeTrainer() as unknown as Step<never, Record<string, unknown>, AnyOutputSpec | undefined>;
        const history: Array<[typeof current, ReturnType<typeof snapshot>]> = [[current, snapshot(current)]];
        for (const o of ops) {
          current =
            o.kind === 'named'
              ? current.named(o.name)
              : o.kind === 'withOptions'
                ? current.withOptions(o.settings)
                : (current.outputs(Object.fromEntries(o.names.map((n) => [n, 'auto']))) as typeof current);
          expect(Object.isFrozen(current)).toBe(true);
          history.push([current, snapshot(current)]);
        }
        for (const [s, snap] of history) expect(snapshot(s)).toEqual(snap);
      }),
      { numRuns: 100 },
    );
  });
});

describe('.withOptions()', () => {
  it('merges: later defined fields win, undefined does not override (property)', () => {
    const value = fc.constantFrom<boolean | undefined>(true, false, undefined);
    fc.assert(
      fc.property(fc.array(value, { maxLength: 5 }), (values) => {
        const s = values.reduce((acc, v) => acc.withOptions(v === undefined ? { enableCache: undefined } : { enableCache: v }), makeTrainer());
        const defined = values.filter((v): v is boolean => v !== undefined);
        expect(s.settings.enableCache).toBe(defined[defined.length - 1]);
      }),
      { numRuns: 100 },
    );
  });

  it('rejects enableCache: "yes" with INVALID_OPTIONS naming the field and the step', () => {
    const e = thrown(() => makeTrainer().withOptions({ enableCache: 'yes' } as never));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.field).toBe('enableCache');
    expect(e.step).toBe('svc_trainer');
    expect(e.message).toContain('enableCache');
    expect(e.message).toContain('svc_trainer');
    expect(e.message).toContain('true or false');
  });

  it('rejects an unknown key with INVALID_OPTIONS naming it', () => {
    const e = thrown(() => makeTrainer().withOptions({ cache: false } as never));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.field).toBe('cache');
    expect(e.message).toContain('cache');
    expect(e.message).toContain('enableCache');
  });

  it('rejects a non-object', () => {
    expect(thrown(() => makeTrainer().withOptions(null as never)).code).toBe('INVALID_OPTIONS');
    expect(thrown(() => makeTrainer().withOptions(false as never)).code).toBe('INVALID_OPTIONS');
  });

  it('on an unnamed step, the error carries no step name', () => {
    const e = thrown(() => step(((f) => f)(() => 1)).withOptions({ enableCache: 1 } as never));
    expect(e.code).toBe('INVALID_OPTIONS');
    expect(e.step).toBeUndefined();
    expect(e.message).toContain('(unnamed)');
  });

  it('a rejected call leaves the step usable and unchanged', () => {
    const s = makeTrainer().withOptions({ enableCache: false });
    expect(() => s.withOptions({ enableCache: 'no' } as never)).toThrow(StepcacheError);
    expect(s.settings).toEqual({ enableCache: false });
  });
});

describe('.outputs()', () => {
  it('declares named outputs', () => {
    const Model = t.array(t.number);
    const s = makeTrainer().outputs({ model: Model, score: 'auto' });
    expect(Object.keys(s.outputSpec)).toEqual(['model', 'score']);
    expect(s.outputSpec.model).toBe(Model);
    expect(s.outputSpec.score).toBe('auto');
  });

  it('copies the spec, so later changes to the argument do not leak in', () => {
    const spec: { model: 'auto'; score: 'auto' } = { model: 'auto', score: 'auto' };
    const s = makeTrainer().outputs(spec);
    (spec as Record<string, unknown>).extra = 'auto';
    expect(Object.keys(s.outputSpec)).toEqual(['model', 'score']);
  });

  it('rejects an empty spec', () => {
    const e = thrown(() => makeTrainer().outputs({} as never));
    expect(e.code).toBe('INVALID_STEP');
    expect(e.message).toMatch(/at least one output/);
    expect(thrown(() => makeTrainer().outputs(null as never)).code).toBe('INVALID_STEP');
  });

  it('refuses every name all objects answer to (__proto__, constructor, hasOwnProperty, toString...), naming it', () => {
    for (const name of Object.getOwnPropertyNames(Object.prototype)) {
      const spec = JSON.parse(`{${JSON.stringify(name)}: "auto", "model": "auto"}`) as Record<string, 'auto'>; // an own __proto__ key, as plain JS can make
      const e = thrown(() => makeTrainer().named('svc_trainer').outputs(spec as never));
      expect([e.code, e.field, e.step]).toEqual(['INVALID_STEP', name, 'svc_trainer']);
      expect(e.message).toContain(JSON.stringify(name));
    }
  });

  it('names close to them are outputs like any other: stored, cached and read back', async () => {
    const dir = tempDir();
    try {
      const makes = step(function lookalikes() {
        return { proto: 1, _constructor: 'two', toString_: [3] };
      }).outputs({ proto: 'auto', _constructor: 'auto', toString_: 'auto' });
      const p = pipeline('lookalikes', (b) => {
        const { proto, _constructor, toString_ } = b.call(makes);
        return { proto, _constructor, toString_ };
      });
      const runner = createRunner({ dir, logger: silentLogger });
      const first = await runner.run(p);
      expect(Object.keys(first.steps['lookalikes']?.outputs ?? {}).sort()).toEqual(['_constructor', 'proto', 'toString_']);
      const again = await runner.run(p);
      expect(again.steps['lookalikes']?.status).toBe('cached');
      expect([await again.output('proto'), await again.output('_constructor'), await again.output('toString_')]).toEqual([1, 'two', [3]]);
      await runner.close();
    } finally {
      removeDir(dir);
    }
  });

  it('rejects bad output names (property)', () => {
    fc.assert(
      fc.property(invalidName, (n) => {
        const e = thrown(() => makeTrainer().outputs({ [n]: 'auto' } as never));
        expect(e.code).toBe('INVALID_STEP');
        expect(e.message).toContain(JSON.stringify(n));
      }),
      { numRuns: 50 },
    );
  });

  it.each<[string, unknown]>([
    ['a string other than auto', 'json'],
    ['a number', 1],
    ['null', null],
    ['an object that is not a codec', { decode: () => 1 }],
    ['a function', () => 1],
  ])('rejects %s as a format, naming the output', (_label, format) => {
    const e = thrown(() => makeTrainer().outputs({ model: 'auto', score: format } as never));
    expect(e.code).toBe('INVALID_STEP');
    expect(e.field).toBe('score');
    expect(e.message).toContain('score');
    expect(e.message).toMatch(/'auto' or an io-ts codec/);
  });
});

describe('data-last combinators with pipe', () => {
  it('named()', () => {
    const original = step(((f) => f)(({ a }: { a: number }) => a));
    const s = pipe(original, named('one'));
    expect(s.name).toBe('one');
    expect(original.name).toBeUndefined();
    expect(() => pipe(original, named('not valid'))).toThrow(StepcacheError);
  });

  it('withOptions()', () => {
    const original = makeTrainer();
    const s = pipe(original, withOptions({ enableCache: false }), named('uncached'), withOptions({ enableCache: undefined }));
    expect(s.name).toBe('uncached');
    expect(s.settings).toEqual({ enableCache: false });
    expect(original.settings).toEqual({});
    expect(thrown(() => pipe(original, withOptions({ enableCache: 'yes' } as never))).code).toBe('INVALID_OPTIONS');
  });
});
