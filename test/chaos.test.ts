/**
 * Fault injection over the real stores: SQLite metadata, artifact files and the file lock are
 * wrapped so that the N-th call into them throws (synchronously, as a rejection, or after its
 * effect), for every N in turn over a small pipeline's run and its outputs. Every time, the run
 * settles (a typed error naming what was at fault, or success when the fault was absorbed), and
 * nothing already stored is lost: a following clean run succeeds, a run of the earlier
 * parameters is served entirely from the cache, and every value equals what its step returned.
 *
 * Also: step outputs that throw while they are stored (a throwing getter, a Proxy, a value nested
 * 5,000 levels deep, a huge string) fail the step with a typed error naming it.
 */
import { constants } from 'node:buffer';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import {
  createFileArtifactStore,
  createFileStepLock,
  createRunner,
  createSqliteMetadataStore,
  pipeline,
  silentLogger,
  step,
  StepcacheError,
  type ArtifactStore,
  type MetadataStore,
  type Runner,
  type StepcacheErrorCode,
  type ReleaseLock,
  type StepLock,
} from '../src';
import { examineStore } from '../src/cache/doctor';
import { storeLayout } from '../src/store/layout';
import { removeDir, tempDir } from './support/fixtures';

// the pipeline: a → b, a → c (its input stays byte-identical across parameters, so c is cached), b + c → d

/** Long enough for a file: the outputs made of it (right, c's and d's) are artifact files, the others kept inside their entries. */
const RIGHT = 'r'.repeat(2000);
const a = step(function chaos_a({ x }: { x: number }) {
  return { left: x * 2, right: RIGHT };
}).outputs({ left: 'auto', right: 'auto' });
const b = step(function chaos_b({ left }: { left: number }) {
  return left + 1;
});
const c = step(function chaos_c({ right }: { right: string }) {
  return `${right}!`;
});
const d = step(function chaos_d({ fromB, fromC }: { fromB: number; fromC: string }) {
  return `${fromC}${fromB}`;
});
const chaosPipeline = pipeline('chaos', (p, { x }: { x: number }) => {
  const { left, right } = p.call(a, { x });
  const fromB = p.call(b, { left });
  const fromC = p.call(c, { right });
  return { result: p.call(d, { fromB, fromC }), b: fromB };
});
/** What an uncached run gives, computed by hand from the step functions. */
const expected = (x: number) => ({ result: `${RIGHT}!${x * 2 + 1}`, b: x * 2 + 1 });

// faults

type FaultMode = 'throw' | 'reject' | 'after';

/** Counts calls into the stores; the call numbered `at` fails in `mode`. */
interface Fault {
  readonly at: number;
  readonly mode: FaultMode;
  count: number;
  readonly calls: string[];
}

const injected = (label: string): Error => Object.assign(new Error(`injected fault in ${label}`), { code: 'EIO' });

/** Calls `f` as the next store call: it may fail instead, or after its effect. */
const tick = (fault: Fault, label: string, f: () => unknown): unknown => {
  fault.count++;
  fault.calls.push(label);
  if (fault.count !== fault.at) return f();
  switch (fault.mode) {
    case 'throw':
      throw injected(label);
    case 'reject':
      return Promise.reject(injected(label));
    case 'after':
      return Promise.resolve(f()).then(() => Promise.reject(injected(label)));
  }
};

/** The same store (a frozen object), each method of it a store call that may fail. */
const faulty = <T extends object>(target: T, name: string, fault: Fault): T =>
  Object.fromEntries(
    Object.entries(target).map(([property, value]) => [
      property,
      typeof value === 'function' ? (...args: unknown[]) => tick(fault, `${name}.${property}`, () => (value as (...xs: unknown[]) => unknown).apply(target, args)) : value,
    ]),
  ) as T;

/**
 * The lock, each acquire a store call. A lock that rejects holds nothing (its contract): one that
 * fails after taking the lock gives it back first.
 */
const faultyLock = (lock: StepLock, fault: Fault): StepLock => ({
  acquire: (key, options) => {
    if (fault.mode !== 'after') return tick(fault, 'lock.acquire', () => lock.acquire(key, options)) as Promise<ReleaseLock>;
    return tick(fault, 'lock.acquire', () => lock.acquire(key, options).then((release) => (fault.count === fault.at ? release().then(() => release) : release))) as Promise<ReleaseLock>;
  },
});

const KNOWN_CODES: readonly StepcacheErrorCode[] = ['STORE_UNAVAILABLE', 'ARTIFACT_UNAVAILABLE', 'LOCK_TIMEOUT', 'STEP_FAILED', 'UNENCODABLE_VALUE'];

// the harness

let dir: string;
const runners: Runner[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => void unhandled.push(e);

beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));
beforeEach(() => {
  dir = tempDir('stepcache-chaos-');
  unhandled.length = 0;
});
afterEach(async () => {
  await Promise.allSettled(runners.splice(0).map((r) => r.close()));
  removeDir(dir);
});

const cleanRunner = (): Runner => {
  const r = createRunner({ dir, logger: silentLogger });
  runners.push(r);
  return r;
};

/** A runner on the same store whose metadata, artifacts and lock go through `fault`; and its metadata store itself. */
const faultyRunner = (fault: Fault): { readonly runner: Runner; readonly metadata: MetadataStore } => {
  const layout = storeLayout(dir);
  const metadata = createSqliteMetadataStore(layout.metadataFile);
  const artifacts: ArtifactStore = faulty(createFileArtifactStore(layout.artifactsDir), 'artifacts', fault);
  const lock = faultyLock(createFileStepLock(layout.locksDir), fault);
  return { runner: createRunner({ dir, logger: silentLogger, metadata: faulty(metadata, 'metadata', fault), artifacts, lock }), metadata };
};

/** What a call settled with: its value, or the error it rejected with. */
const settled = <A>(p: Promise<A>): Promise<{ ok: true; value: A } | { ok: false; error: unknown }> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

/** A typed error whose message names what was at fault: its step when it has one, else the store. */
const expectTyped = (error: unknown): void => {
  expect(error).toBeInstanceOf(StepcacheError);
  const e = error as StepcacheError;
  expect(KNOWN_CODES).toContain(e.code);
  if (e.step !== undefined) expect(e.message).toContain(e.step);
  else expect(e.message).toMatch(/store|lock|artifact/i);
};

/** Faulty runs of x=2 and x=1 over a store that holds x=1, with their outputs; then the store is checked with clean runs. */
const runWithFault = async (fault: Fault): Promise<void> => {
  const { runner, metadata } = faultyRunner(fault);
  // x=2 executes a, b and d; then x=1 is all cached, and its outputs are read from the store.
  for (const x of [2, 1]) {
    const run = await settled(runner.run(chaosPipeline, { x }));
    if (run.ok) {
      for (const name of ['result', 'b'] as const) {
        const value = await settled(run.value.output(name));
        if (value.ok) expect(value.value).toEqual(expected(x)[name]);
        else expectTyped(value.error);
      }
    } else expectTyped(run.error);
  }
  const closed = await settled(runner.close());
  if (!closed.ok) expectTyped(closed.error);
  await settled(metadata.close());
};

/** Nothing stored was lost: x=1 is served from the cache, x=2 runs, and every value is right. */
const expectStoreIntact = async (): Promise<void> => {
  const runner = cleanRunner();
  const again = await runner.run(chaosPipeline, { x: 1 });
  expect(Object.values(again.steps).map((s) => s.status)).toEqual(['cached', 'cached', 'cached', 'cached']);
  expect(await again.output('result')).toEqual(expected(1).result);
  expect(await again.output('b')).toEqual(expected(1).b);
  const next = await runner.run(chaosPipeline, { x: 2 });
  expect(await next.output('result')).toEqual(expected(2).result);
  expect(await next.output('b')).toEqual(expected(2).b);
  const last = await runner.run(chaosPipeline, { x: 2 });
  expect(Object.values(last.steps).map((s) => s.status)).toEqual(['cached', 'cached', 'cached', 'cached']);
};

const seed = async (): Promise<void> => {
  const first = await cleanRunner().run(chaosPipeline, { x: 1 });
  expect(await first.output('result')).toEqual(expected(1).result);
  await Promise.all(runners.splice(0).map((r) => r.close()));
};

/** How many store calls a fault-free run of x=2 (with its outputs and close) makes. */
const countCalls = async (): Promise<{ readonly total: number; readonly calls: readonly string[] }> => {
  const fault: Fault = { at: 0, mode: 'throw', count: 0, calls: [] };
  await runWithFault(fault);
  return { total: fault.count, calls: fault.calls };
};

jest.setTimeout(600_000);

describe('faults injected into the real stores', () => {
  it('counts the store calls of a run, so that every one of them is failed in turn below', async () => {
    await seed();
    const { total, calls } = await countCalls();
    expect(total).toBeGreaterThan(10);
    expect(calls).toEqual(expect.arrayContaining(['metadata.getLatestEntriesOfSteps', 'metadata.putEntry', 'metadata.putRun', 'artifacts.put', 'artifacts.idOf', 'artifacts.present', 'artifacts.get', 'lock.acquire']));
  });

  for (const mode of ['throw', 'reject', 'after'] as const) {
    it(`every call failing in turn (${mode}): the run settles with a typed error or absorbs it, and nothing stored is lost`, async () => {
      await seed();
      const { total } = await countCalls();
      removeDir(dir);
      for (let at = 1; at <= total; at++) {
        dir = tempDir('stepcache-chaos-');
        await seed();
        const fault: Fault = { at, mode, count: 0, calls: [] };
        try {
          await runWithFault(fault);
          await expectStoreIntact();
        } catch (e) {
          throw new Error(`after a fault (${mode}) in call ${at}, ${fault.calls[at - 1] ?? '(none)'}: ${String(e)}\n${(e as Error).stack ?? ''}`);
        }
        expect(unhandled).toEqual([]);
        await Promise.all(runners.splice(0).map((r) => r.close()));
        removeDir(dir);
      }
    });
  }
});

// outputs that throw while they are stored

const outputPipeline = (name: string, make: () => unknown) =>
  pipeline(`chaos_${name}`, (p) => ({
    out: p.call(
      step(function producer() {
        return make();
      }).named(name),
    ),
  }));

const failureOf = async (p: ReturnType<typeof outputPipeline>): Promise<StepcacheError> => {
  const outcome = await settled(cleanRunner().run(p));
  expect(outcome.ok).toBe(false);
  const error = (outcome as { error: unknown }).error;
  expect(error).toBeInstanceOf(StepcacheError);
  return error as StepcacheError;
};

describe('a step output that cannot be stored', () => {
  it('a throwing getter: a typed error naming the step, and the run settles', async () => {
    const e = await failureOf(
      outputPipeline('getter_step', () =>
        Object.defineProperty({}, 'weights', {
          enumerable: true,
          get: () => {
            throw new Error('lazy weights unavailable');
          },
        }),
      ),
    );
    expect([e.code, e.step]).toEqual(['UNENCODABLE_VALUE', 'getter_step']);
    expect(e.message).toContain('lazy weights unavailable');
    expect(e.message).toContain('getter_step');
    expect(e.run?.steps['getter_step']?.status).toBe('failed');
  });

  it('a Proxy whose traps throw: a typed error naming the step', async () => {
    const hostile = new Proxy(
      {},
      {
        ownKeys: () => {
          throw new Error('no keys for you');
        },
        getPrototypeOf: () => {
          throw new Error('no prototype for you');
        },
      },
    );
    const e = await failureOf(outputPipeline('proxy_step', () => hostile));
    expect([e.code, e.step]).toEqual(['UNENCODABLE_VALUE', 'proxy_step']);
    expect(e.message).toContain('proxy_step');
  });

  it('a value nested 5,000 levels deep is stored and read back', async () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 5000; i++) deep = { next: deep };
    const runner = cleanRunner();
    const p = outputPipeline('deep_step', () => deep);
    await runner.run(p);
    const cached = await runner.run(p);
    expect(cached.steps['deep_step']?.status).toBe('cached');
    let read = (await cached.output('out')) as { next?: unknown } | string;
    let depth = 0;
    while (typeof read === 'object') {
      read = read.next as typeof read;
      depth++;
    }
    expect([depth, read]).toEqual([5000, 'bottom']);
  });

  it('a string too long to store as JSON text: a typed error naming the step', async () => {
    // JSON text of the string adds two quotes: past the engine's maximum string length.
    const huge = 'x'.repeat(constants.MAX_STRING_LENGTH - 1);
    const e = await failureOf(outputPipeline('huge_step', () => huge));
    expect([e.code, e.step]).toEqual(['UNENCODABLE_VALUE', 'huge_step']);
    expect(e.message).toContain('huge_step');
  });
});

// SIGKILL during maintenance

const MAINTENANCE_CHILD = path.join(__dirname, 'support', 'maintenance-child.ts');

/** A small seeded generator (mulberry32): the same delays on every run of the test. */
const seeded = (seed: number): (() => number) => {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let r = Math.imul(s ^ (s >>> 15), 1 | s);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
};

/**
 * Runs a command of the command line in a child process and kills it (SIGKILL) `delayMs` after
 * the command begins; says whether it had finished first.
 */
const killDuring = (args: readonly string[], delayMs: number): Promise<{ readonly finished: boolean }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAINTENANCE_CHILD, ...args], { cwd: path.join(__dirname, '..'), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (timer === undefined && out.includes('started\n')) {
        child.stdin.write('go\n');
        timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL' && !/done 0/.test(out)) reject(new Error(`stepcache ${args.join(' ')} exited with ${String(code)}:\n${out}\n${err}`));
      else resolve({ finished: /done 0/.test(out) });
    });
  });

/** The x values whose runs fill the store: a's entries all share the artifact of its output `right` ('r'). */
const XS = Array.from({ length: 10 }, (_, i) => i + 1);

const fillStore = async (): Promise<void> => {
  const runner = createRunner({ dir, logger: silentLogger });
  for (const x of XS) await runner.run(chaosPipeline, { x });
  await runner.close();
};

/** What `stepcache doctor` sees: rows that do not decode, entries whose artifacts are missing or damaged. */
const doctor = async () => {
  const layout = storeLayout(dir);
  const metadata = createSqliteMetadataStore(layout.metadataFile);
  try {
    return await examineStore(metadata, createFileArtifactStore(layout.artifactsDir), { repair: false });
  } finally {
    await metadata.close();
  }
};

const MAINTENANCE: ReadonlyArray<{ readonly name: string; readonly args: (dir: string) => string[] }> = [
  { name: 'cache prune --max-bytes (least recently used first, shared artifacts)', args: (d) => ['cache', 'prune', '--dir', d, '--max-bytes', '40', '--grace', '0s'] },
  { name: 'cache prune --step', args: (d) => ['cache', 'prune', '--dir', d, '--step', 'chaos_a', '--grace', '0s'] },
  { name: 'cache clear', args: (d) => ['cache', 'clear', '--yes', '--dir', d] },
  { name: 'runs prune', args: (d) => ['runs', 'prune', '--keep-last', '3', '--dir', d] },
];

describe('SIGKILL during cache prune, cache clear and runs prune', () => {
  const random = seeded(20261130);
  const cases = MAINTENANCE.flatMap((m) => [0, 1, 2, 3].map(() => ({ ...m, delayMs: Math.floor(random() * 50) })));

  it.each(cases)('$name, killed after $delayMs ms: doctor finds nothing broken, and every later run gives the steps’ values', async ({ args, delayMs }) => {
    await fillStore();
    await killDuring(args(dir), delayMs);

    const after = await doctor();
    expect(after.damaged).toEqual([]);
    expect(after.broken).toEqual([]);

    const runner = cleanRunner();
    for (const x of XS) {
      const run = await runner.run(chaosPipeline, { x });
      expect(await run.output('result')).toEqual(expected(x).result);
      expect(await run.output('b')).toEqual(expected(x).b);
    }
    expect((await runner.listRuns()).length).toBeGreaterThanOrEqual(XS.length);
    const settledStore = await doctor();
    expect(settledStore).toMatchObject({ damaged: [], broken: [] });
    expect(settledStore.entriesChecked).toBeGreaterThan(0);
  }, 120_000);
});
