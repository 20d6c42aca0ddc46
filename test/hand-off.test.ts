/**
 * Handing outputs over: what is stored is what a step returned at the moment it returned, and
 * every consumer (a step downstream, a caller of `run.output()`) gets a value of its own, equal to
 * the stored one, whatever the step or other consumers do to theirs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as t from 'io-ts';
import { createRunner, createSqliteMetadataStore, pipeline, silentLogger, step, type Runner } from '../src';
import { storePerTest } from './support/fixtures';

const store = storePerTest();

const runnerFor = (): Runner => {
  const runner = createRunner({ dir: store.dir(), logger: silentLogger });
  store.keep(runner);
  return runner;
};

/** The bytes of the artifact of a step's output, as stored: in its entry (inline, as the entry is stored), or in its file. */
const storedBytes = async (record: { readonly steps: Readonly<Record<string, { readonly key?: string | undefined; readonly outputs?: Readonly<Record<string, { readonly id: string }>> | undefined } | undefined>> }, stepName: string, output = 'output'): Promise<Buffer> => {
  const id = record.steps[stepName]?.outputs?.[output]?.id;
  const key = record.steps[stepName]?.key;
  if (id === undefined || key === undefined) throw new Error(`no artifact for ${stepName}.${output}`);
  const metadata = createSqliteMetadataStore(path.join(store.dir(), 'metadata.sqlite'));
  try {
    const inline = (await metadata.getEntries([key]))[0]?.outputs[output]?.inline;
    return inline === undefined ? fs.readFileSync(path.join(store.dir(), 'artifacts', id.slice(0, 2), id)) : Buffer.from(inline, 'base64');
  } finally {
    await metadata.close();
  }
};

// steps: one producer, a consumer that mutates its input in place, one that reads it afterwards

const produceList = step(function produce_list(_: { rep: number }): number[] {
  return [3, 1, 2];
});
const sortInPlace = step(function sort_in_place({ xs }: { xs: number[]; rep: number }): number {
  xs.sort((a, b) => a - b);
  xs.push(99);
  return xs[0] ?? -1;
});
const readAfter = step(function read_after({ xs }: { xs: number[]; first: number; rep: number }): number[] {
  return xs;
});
const listPipeline = pipeline('hand_off_list', (p, { rep, consumers }: { rep: number; consumers: number }) => {
  const xs = p.call(produceList, { rep });
  const first = p.call(sortInPlace, { xs, rep: consumers });
  return { xs, seen: p.call(readAfter, { xs, first, rep: consumers }) };
});

const produceFloats = step(function produce_floats(_: { rep: number }): Float64Array {
  return new Float64Array([1.5, 2.5, 3.5]);
});
const fillInPlace = step(function fill_in_place({ v }: { v: Float64Array; rep: number }): number {
  v.fill(0);
  return v.length;
});
const readFloats = step(function read_floats({ v }: { v: Float64Array; n: number; rep: number }): Float64Array {
  return v;
});
const floatsPipeline = pipeline('hand_off_floats', (p, { rep, consumers }: { rep: number; consumers: number }) => {
  const v = p.call(produceFloats, { rep });
  const n = p.call(fillInPlace, { v, rep: consumers });
  return { v, seen: p.call(readFloats, { v, n, rep: consumers }) };
});

describe('consumers of one output', () => {
  it('a step sorting its input in place does not change what a later step sees (executed producer)', async () => {
    const run = await runnerFor().run(listPipeline, { rep: 1, consumers: 1 });
    expect(await run.output('seen')).toEqual([3, 1, 2]);
    expect(await run.output('xs')).toEqual([3, 1, 2]);
    expect(JSON.parse((await storedBytes(run, 'produce_list')).toString('utf8'))).toEqual([3, 1, 2]);
  });

  it('a step sorting its input in place does not change what a later step sees (cached producer)', async () => {
    const runner = runnerFor();
    await runner.run(listPipeline, { rep: 1, consumers: 1 });
    const run = await runner.run(listPipeline, { rep: 1, consumers: 2 });
    expect(run.steps.produce_list?.status).toBe('cached');
    expect(run.steps.read_after?.status).toBe('executed');
    expect(await run.output('seen')).toEqual([3, 1, 2]);
  });

  it('a step filling a typed array in place does not change what a later step sees, nor the stored artifact', async () => {
    const runner = runnerFor();
    const run = await runner.run(floatsPipeline, { rep: 1, consumers: 1 });
    expect(await run.output('seen')).toEqual(new Float64Array([1.5, 2.5, 3.5]));
    expect(new Float64Array(new Uint8Array(await storedBytes(run, 'produce_floats')).buffer)).toEqual(new Float64Array([1.5, 2.5, 3.5]));
    const again = await runner.run(floatsPipeline, { rep: 1, consumers: 2 });
    expect(again.steps.produce_floats?.status).toBe('cached');
    expect(await again.output('seen')).toEqual(new Float64Array([1.5, 2.5, 3.5]));
  });
});

describe('run.output()', () => {
  const produce = step(function produce_values(): { readonly list: number[]; readonly floats: Float64Array; readonly buffer: Buffer } {
    return { list: [3, 1, 2], floats: new Float64Array([3, 1, 2]), buffer: Buffer.from([3, 1, 2]) };
  }).outputs({ list: 'auto', floats: 'auto', buffer: 'auto' });
  const p = pipeline('hand_off_output', (p) => p.call(produce));

  it('a caller mutating the value it got changes neither a later output() nor the stored artifact', async () => {
    const runner = runnerFor();
    let executed: Awaited<ReturnType<typeof runner.run>> | undefined;
    for (const expected of ['executed', 'cached'] as const) {
      const run = await runner.run(p);
      expect(run.steps.produce_values?.status).toBe(expected);
      // A cached step's record names its origin only; the run that executed it holds its outputs.
      executed ??= run;
      const list = (await run.output('list')) as number[];
      list.sort((a, b) => a - b);
      const floats = (await run.output('floats')) as Float64Array;
      floats.fill(7);
      const buffer = (await run.output('buffer')) as Buffer;
      buffer.fill(7);
      expect(await run.output('list')).toEqual([3, 1, 2]);
      expect(await run.output('floats')).toEqual(new Float64Array([3, 1, 2]));
      const bufferAgain = await run.output('buffer');
      expect(Buffer.isBuffer(bufferAgain)).toBe(true);
      expect(bufferAgain).toEqual(Buffer.from([3, 1, 2]));
      expect(await storedBytes(executed, 'produce_values', 'buffer')).toEqual(Buffer.from([3, 1, 2]));
    }
  });

  it('values decoded by a codec keep their class for every consumer', async () => {
    class Weights {
      constructor(readonly values: number[]) {}
      total(): number {
        return this.values.reduce((a, b) => a + b, 0);
      }
    }
    const WeightsCodec = new t.Type<Weights, number[], unknown>(
      'Weights',
      (u): u is Weights => u instanceof Weights,
      (u, c) => (Array.isArray(u) && u.every((x) => typeof x === 'number') ? t.success(new Weights(u as number[])) : t.failure(u, c)),
      (w) => w.values,
    );
    const fit = step(function fit_weights(): { readonly weights: Weights } {
      return { weights: new Weights([1, 2, 3]) };
    }).outputs({ weights: WeightsCodec });
    const zero = step(function zero_weights({ weights }: { weights: Weights }): number {
      weights.values.fill(0);
      return weights.total();
    });
    const total = step(function total_weights({ weights }: { weights: Weights; zeroed: number }): number {
      if (!(weights instanceof Weights)) throw new Error('not a Weights');
      return weights.total();
    });
    const wp = pipeline('hand_off_codec', (p) => {
      const { weights } = p.call(fit);
      const zeroed = p.call(zero, { weights });
      return { zeroed, total: p.call(total, { weights, zeroed }), weights };
    });
    const run = await runnerFor().run(wp);
    expect(await run.output('zeroed')).toBe(0);
    expect(await run.output('total')).toBe(6);
    const first = await run.output('weights');
    expect(first).toBeInstanceOf(Weights);
    first.values.fill(5);
    const second = await run.output('weights');
    expect(second).toBeInstanceOf(Weights);
    expect(second.total()).toBe(6);
  });
});

describe('what is stored', () => {
  it('is the value the step returned when it returned, even if the step changes it afterwards', async () => {
    let changed!: Promise<void>;
    const keepsReference = step(function keeps_reference(): { readonly floats: Float64Array; readonly list: number[]; readonly later: number[] } {
      const floats = new Float64Array([1, 2, 3]);
      const list = [1, 2, 3];
      const later = [4, 5, 6];
      changed = new Promise((resolve) =>
        setTimeout(() => {
          floats.fill(-1);
          list.push(-1);
          later.reverse();
          resolve();
        }, 0),
      );
      return { floats, list, later };
    }).outputs({ floats: 'auto', list: 'auto', later: 'auto' });
    const runner = runnerFor();
    const p = pipeline('hand_off_later', (p) => p.call(keepsReference));
    const run = await runner.run(p);
    await changed;
    expect(await run.output('floats')).toEqual(new Float64Array([1, 2, 3]));
    expect(await run.output('list')).toEqual([1, 2, 3]);
    expect(await run.output('later')).toEqual([4, 5, 6]);
    const cached = await runner.run(p);
    expect(cached.steps.keeps_reference?.status).toBe('cached');
    expect(await cached.output('floats')).toEqual(new Float64Array([1, 2, 3]));
    expect(await cached.output('later')).toEqual([4, 5, 6]);
  });

  it('is the value the step returned for a big output too (written behind by a worker), and its consumers see it', async () => {
    const length = 1_200_000; // 9.6 MB: above the size written behind
    const expected = new Float64Array(length).map((_, i) => i * 0.25);
    let changed!: Promise<void>;
    const big = step(function big_then_changed(): Float64Array {
      const v = Float64Array.from(expected);
      changed = new Promise((resolve) =>
        setTimeout(() => {
          v.fill(-1);
          resolve();
        }, 0),
      );
      return v;
    });
    const sum = step(function sum_of({ v }: { v: Float64Array }): number {
      return v.reduce((a, b) => a + b, 0);
    });
    const runner = runnerFor();
    const p = pipeline('hand_off_big', (p) => {
      const v = p.call(big);
      return { v, total: p.call(sum, { v }) };
    });
    const run = await runner.run(p);
    await changed;
    const stored = await storedBytes(run, 'big_then_changed');
    expect(stored.equals(Buffer.from(expected.buffer))).toBe(true);
    expect(await run.output('total')).toBe(expected.reduce((a, b) => a + b, 0));
    const cached = await runner.run(p);
    expect(cached.steps.big_then_changed?.status).toBe('cached');
    expect(await cached.output('v')).toEqual(expected);
  });
});
