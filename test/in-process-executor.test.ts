/**
 * The in-process executor's retries: a step function that throws is called again, `retries`
 * times at most, after short pauses; what another try cannot fix is not retried; and `retries`
 * never changes a key.
 */
import { createRunner, pipeline, silentLogger, step, type StepcacheError } from '../src';
import { retryPauseMs } from '../src/runner/in-process-executor';
import { rejection, storePerTest } from './support/fixtures';

const store = storePerTest();
const runnerFor = () => store.keep(createRunner({ dir: store.dir(), logger: silentLogger }));

/** A pipeline whose one step throws on its first `failures` calls; `calls()` counts the calls. */
const flaky = (failures: number) => {
  let calls = 0;
  const fetchRows = step(function fetch_rows() {
    calls++;
    if (calls <= failures) throw new Error(`connection reset (call ${String(calls)})`);
    return [1, 2, 3];
  });
  return { pipe: pipeline('flaky', (p) => ({ rows: p.call(fetchRows, {}) })), calls: () => calls };
};

describe('retries in process', () => {
  it('a step that fails twice then succeeds executes with retries: 2, called three times', async () => {
    const { pipe, calls } = flaky(2);
    const run = await runnerFor().run(pipe.withOptions({ retries: 2 }));
    expect(run.steps['fetch_rows']?.status).toBe('executed');
    expect(await run.output('rows')).toEqual([1, 2, 3]);
    expect(calls()).toBe(3);
  });

  it('fails once the retries are used up, saying how many tries it made', async () => {
    const { pipe, calls } = flaky(5);
    const e: StepcacheError = await rejection(runnerFor().run(pipe.withOptions({ steps: { fetch_rows: { retries: 1 } } })));
    expect(e.code).toBe('STEP_FAILED');
    expect(e.message).toContain('Step fetch_rows failed (after 2 tries): connection reset (call 2)');
    expect(calls()).toBe(2);
  });

  it('without retries a step is called once', async () => {
    const { pipe, calls } = flaky(1);
    await rejection(runnerFor().run(pipe));
    expect(calls()).toBe(1);
  });

  it('outputs that cannot be stored are not retried: another try returns the same', async () => {
    let calls = 0;
    const unstorable = step(function make_symbol() {
      calls++;
      return Symbol('x');
    });
    const e = await rejection(runnerFor().run(pipeline('unstorable', (p) => ({ out: p.call(unstorable, {}) })).withOptions({ retries: 3 })));
    expect(e.code).toBe('UNENCODABLE_VALUE');
    expect(calls).toBe(1);
  });

  it('retries is not part of the key: setting it keeps a step cached', async () => {
    const { pipe } = flaky(0);
    await runnerFor().run(pipe);
    const again = await runnerFor().run(pipe.withOptions({ retries: 4 }));
    expect(again.steps['fetch_rows']?.status).toBe('cached');
  });

  it('pauses 100 ms, then doubling, at most 5 s', () => {
    expect([1, 2, 3, 4, 10].map(retryPauseMs)).toEqual([100, 200, 400, 800, 5_000]);
  });

  it('an invalid retries is refused naming the field', () => {
    const { pipe } = flaky(0);
    expect(() => pipe.withOptions({ retries: -1 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', field: 'retries' }) as StepcacheError);
    expect(() => pipe.withOptions({ retries: 1.5 })).toThrow(/Invalid option retries of pipeline flaky \(withOptions\): got 1.5, expected a whole number from 0 to 100/);
  });
});
