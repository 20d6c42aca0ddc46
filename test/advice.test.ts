/**
 * Advice that works: every error message that tells the user what to do names an API that
 * exists, with the syntax it has. For each, a table row makes the mistake, checks the message
 * gives the advice, then follows it literally and checks that the run then works.
 */
import * as t from 'io-ts';
import { createRunner, pipeline, silentLogger, step, type Runner } from '../src';
import { rejection, storePerTest } from './support/fixtures';

const store = storePerTest();
const runner = (): Runner => store.keep(createRunner({ dir: store.dir(), logger: silentLogger }));

/** Runs a pipeline of one call of `s` and returns its output `o`. */
const runOne = async (name: string, call: Parameters<typeof pipeline>[1], output = 'o'): Promise<unknown> => {
  const run = await runner().run(pipeline(name, call) as never);
  return (run as unknown as { output: (name: string) => Promise<unknown> }).output(output);
};

// codecs the advice asks for

const MapCodec = new t.Type<Map<string, number>, Array<[string, number]>, unknown>(
  'MapOfNumbers',
  (u): u is Map<string, number> => u instanceof Map,
  (u, c) => (Array.isArray(u) ? t.success(new Map(u as Array<[string, number]>)) : t.failure(u, c)),
  (m) => [...m],
);
const DateCodec = new t.Type<Date, string, unknown>(
  'IsoDate',
  (u): u is Date => u instanceof Date,
  (u, c) => (typeof u === 'string' ? t.success(new Date(u)) : t.failure(u, c)),
  (d) => d.toISOString(),
);
const BigIntCodec = new t.Type<bigint, string, unknown>(
  'BigIntText',
  (u): u is bigint => typeof u === 'bigint',
  (u, c) => (typeof u === 'string' ? t.success(BigInt(u)) : t.failure(u, c)),
  (b) => b.toString(),
);

class Client {
  readonly url = 'https://example.invalid';
}

// the table

interface Advice {
  readonly mistake: string;
  /** Makes the mistake: rejects (or throws) with a StepcacheError. */
  readonly broken: () => Promise<unknown>;
  /** What the message must say to do. */
  readonly says: string;
  /** Follows the advice literally: resolves with what the run gave. */
  readonly followed: () => Promise<unknown>;
  readonly gives: unknown;
}

const advice: readonly Advice[] = [
  {
    mistake: 'an output that is a Map (one unnamed output)',
    broken: () => runOne('adv_map', (p) => ({ o: p.call(step(function adv_map_step() { return new Map([['a', 1]]); })) })),
    says: '.outputs({ output: codec }) on step adv_map_step, whose function then returns { output: value } (and p.call gives { output: handle })',
    followed: () =>
      runOne('adv_map', (p) => ({
        o: p.call(step(function adv_map_step() { return { output: new Map([['a', 1]]) }; }).outputs({ output: MapCodec })).output,
      })),
    gives: new Map([['a', 1]]),
  },
  {
    mistake: 'a named output that is a Date',
    broken: () => runOne('adv_date', (p) => ({ o: p.call(step(function adv_date_step() { return { when: new Date(0), n: 1 }; }).outputs({ when: 'auto', n: 'auto' })).when })),
    says: ".outputs({ when: codec, ... }) on step adv_date_step, in place of 'auto'",
    followed: () => runOne('adv_date', (p) => ({ o: p.call(step(function adv_date_step() { return { when: new Date(0), n: 1 }; }).outputs({ when: DateCodec, n: 'auto' })).when })),
    gives: new Date(0),
  },
  {
    mistake: 'an output that is a bigint',
    broken: () => runOne('adv_big', (p) => ({ o: p.call(step(function adv_big_step() { return 2n ** 70n; })) })),
    says: '.outputs({ output: codec })',
    followed: () => runOne('adv_big', (p) => ({ o: p.call(step(function adv_big_step() { return { output: 2n ** 70n }; }).outputs({ output: BigIntCodec })).output })),
    gives: 2n ** 70n,
  },
  {
    mistake: 'an output holding NaN',
    broken: () => runOne('adv_nan', (p) => ({ o: p.call(step(function adv_nan_step() { return [1, NaN]; })) })),
    says: 'use a Float64Array',
    followed: () => runOne('adv_nan', (p) => ({ o: p.call(step(function adv_nan_step() { return Float64Array.from([1, NaN]); })) })),
    gives: Float64Array.from([1, NaN]),
  },
  {
    mistake: 'an output holding undefined under a key',
    broken: () => runOne('adv_undef', (p) => ({ o: p.call(step(function adv_undef_step() { return { a: undefined, b: 1 }; })) })),
    says: 'use null or leave the key out',
    followed: () => runOne('adv_undef', (p) => ({ o: p.call(step(function adv_undef_step() { return { a: null, b: 1 }; })) })),
    gives: { a: null, b: 1 },
  },
  {
    mistake: 'a parameter that is an instance of a class',
    broken: () => runOne('adv_param', (p) => ({ o: p.call(step(function adv_param_step({ client }: { client: Client }) { return client.url.length; }), { client: new Client() }) })),
    says: "step(fn).withOptions({ ignoredInputs: ['client'] })",
    followed: () =>
      runOne('adv_param', (p) => ({
        o: p.call(step(function adv_param_step({ client }: { client: Client }) { return client.url.length; }).withOptions({ ignoredInputs: ['client'] }), { client: new Client() }),
      })),
    gives: 'https://example.invalid'.length,
  },
  {
    mistake: 'an output object with symbol keys',
    broken: () => runOne('adv_sym', (p) => ({ o: p.call(step(function adv_sym_step() { return { [Symbol.for('id')]: 1, n: 2 }; })) })),
    says: 'use string keys',
    followed: () => runOne('adv_sym', (p) => ({ o: p.call(step(function adv_sym_step() { return { id: 1, n: 2 }; })) })),
    gives: { id: 1, n: 2 },
  },
  {
    mistake: 'a parameter that is a function (a progress callback)',
    broken: () => runOne('adv_fn', (p) => ({ o: p.call(step(function adv_fn_step({ n, progress }: { n: number; progress: (d: number) => void }) { progress(n); return n; }), { n: 3, progress: () => undefined }) })),
    says: "step(fn).withOptions({ ignoredInputs: ['progress'] })",
    followed: () =>
      runOne('adv_fn', (p) => ({
        o: p.call(step(function adv_fn_step({ n, progress }: { n: number; progress: (d: number) => void }) { progress(n); return n; }).withOptions({ ignoredInputs: ['progress'] }), { n: 3, progress: () => undefined }),
      })),
    gives: 3,
  },
  {
    mistake: 'a step called without a required input',
    broken: () => runOne('adv_missing', (p) => ({ o: p.call(step(function adv_missing_step({ a, b }: { a: number; b: number }) { return a + b; }), { a: 1 } as never) })),
    says: 'pass it in p.call(adv_missing_step, { ..., b })',
    followed: () => runOne('adv_missing', (p) => ({ o: p.call(step(function adv_missing_step({ a, b }: { a: number; b: number }) { return a + b; }), { a: 1, b: 2 }) })),
    gives: 3,
  },
  {
    mistake: 'a Promise passed as a parameter',
    broken: () => runOne('adv_promise', (p) => ({ o: p.call(step(function adv_promise_step({ n }: { n: number }) { return n * 2; }), { n: Promise.resolve(4) as unknown as number }) })),
    says: 'await the value before the run and pass it as a parameter',
    followed: async () => {
      const n = await Promise.resolve(4);
      return runOne('adv_promise', (p) => ({ o: p.call(step(function adv_promise_step({ n }: { n: number }) { return n * 2; }), { n }) }));
    },
    gives: 8,
  },
  {
    mistake: 'one step called twice under one name',
    broken: () => {
      const twice = step(function adv_twice({ n }: { n: number }) { return n + 1; });
      return runOne('adv_dup', (p) => ({ o: p.call(twice, { n: p.call(twice, { n: 1 }) }) }));
    },
    says: "give the second use its own name with .named('adv_twice_2')",
    followed: () => {
      const twice = step(function adv_twice({ n }: { n: number }) { return n + 1; });
      return runOne('adv_dup', (p) => ({ o: p.call(twice.named('adv_twice_2'), { n: p.call(twice, { n: 1 }) }) }));
    },
    gives: 3,
  },
  {
    mistake: 'an anonymous step function',
    broken: () => runOne('adv_anon', (p) => ({ o: p.call(step(() => 5)) })),
    says: "Name it with step(fn).named('...') or use a named function",
    followed: () => runOne('adv_anon', (p) => ({ o: p.call(step(() => 5).named('adv_five')) })),
    gives: 5,
  },
  {
    mistake: 'a step slower than its timeout',
    broken: () => runOne('adv_slow', (p) => ({ o: p.call(step(async function adv_slow_step() { await new Promise((r) => setTimeout(r, 300)); return 1; }).withOptions({ timeout: 20 })) })),
    says: "raise its timeout setting (.withOptions({ timeout: '2h' }))",
    followed: () => runOne('adv_slow', (p) => ({ o: p.call(step(async function adv_slow_step() { await new Promise((r) => setTimeout(r, 300)); return 1; }).withOptions({ timeout: '2h' })) })),
    gives: 1,
  },
  {
    mistake: 'an invalid pipeline name',
    broken: async () => pipeline('my pipeline', () => ({})),
    says: 'use letters, digits, "_", "." or "-", starting with a letter or "_"',
    followed: () => runOne('my_pipeline', (p) => ({ o: p.call(step(function adv_named() { return 'ok'; })) })),
    gives: 'ok',
  },
];

describe.each(advice)('$mistake', ({ broken, says, followed, gives }) => {
  it('says what to do, and doing it literally makes the run work', async () => {
    const error = await rejection(Promise.resolve().then(broken));
    expect(error.message).toContain(says);
    expect(await followed()).toEqual(gives);
  });
});

// warnings that give advice

/** A step made inside a function: it captures `factor`, whose value the key cannot see. */
const capturing = (factor: number) =>
  step(function adv_captured({ x }: { x: number }) {
    return x * factor;
  });

describe('a step that uses a variable of an enclosing function', () => {
  it('is warned about, saying to pass it as a parameter; doing so ends the warning and a change to it re-runs the step', async () => {
    const warned = async (s: unknown, args: Record<string, unknown>) => {
      const messages: string[] = [];
      const r = store.keep(createRunner({ dir: store.dir(), logger: silentLogger, onEvent: (e) => void (e.type === 'warning' && messages.push(e.message)) }));
      const run = await r.run(pipeline('adv_capture', (p) => ({ o: p.call(s as never, args as never) as never })) as never);
      return { messages, value: await (run as unknown as { output: (n: string) => Promise<unknown> }).output('o'), status: Object.values((run as unknown as { steps: Record<string, { status: string }> }).steps)[0]?.status };
    };
    const before = await warned(capturing(3), { x: 2 });
    expect(before.messages.join('\n')).toContain('pass factor as a parameter');

    const followed = step(function adv_captured({ x, factor }: { x: number; factor: number }) {
      return x * factor;
    });
    const first = await warned(followed, { x: 2, factor: 3 });
    expect(first.messages).toEqual([]);
    expect(first.value).toBe(6);
    const changed = await warned(followed, { x: 2, factor: 4 });
    expect([changed.status, changed.value]).toEqual(['executed', 8]);
  });
});
