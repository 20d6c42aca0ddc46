import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { StepcacheError } from '../src';
import { createFileStepLock, createMemoryStepLock, DEFAULT_MAX_WAIT_MS, describeLockHolder, type LockWait, type ReleaseLock, type StepLock } from '../src/lock';
import { removeDir, tempDir } from './support/fixtures';

const KEY = 'c0ffee'.repeat(10) + 'abcd'; // 64 hex digits, like a step key
const OTHER_KEY = '0123456789abcdef';

let dir: string;
let locks: string;
/** Child processes still running; killed after each test. */
const running = new Set<Child>();
beforeEach(() => {
  dir = tempDir('stepcache-lock-');
  locks = path.join(dir, 'locks');
});
afterEach(async () => {
  for (const c of running) c.kill('SIGKILL');
  await Promise.all([...running].map((c) => c.exited));
  removeDir(dir);
});

// helpers

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether a promise has settled once pending callbacks ran (within `withinMs`). */
const stateOf = (p: Promise<unknown>, withinMs = 5): Promise<'resolved' | 'rejected' | 'pending'> =>
  Promise.race([
    p.then(
      () => 'resolved' as const,
      () => 'rejected' as const,
    ),
    new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), withinMs)),
  ]);

/** How long a free lock may take to be taken on a loaded machine (a file made through the thread pool). */
const FREE_WITHIN_MS = 1_000;

/** Counts holders at once; `max` must stay 1. */
/** Whether a key is free right now; leaves it as it was (a waiting probe gives up). */
const isFree = async (lock: StepLock, key = KEY): Promise<boolean> => {
  const controller = new AbortController();
  const probe = lock.acquire(key, { signal: controller.signal });
  if ((await stateOf(probe, FREE_WITHIN_MS)) === 'resolved') {
    await (await probe)();
    return true;
  }
  controller.abort();
  await probe.catch(() => undefined);
  return false;
};

const occupancy = () => {
  let now = 0;
  let max = 0;
  let entries = 0;
  return {
    enter: () => {
      now++;
      entries++;
      max = Math.max(max, now);
    },
    leave: () => void now--,
    get max() {
      return max;
    },
    get entries() {
      return entries;
    },
  };
};

/** Many acquirers of one key, each holding for a while; returns the counter. */
const contend = async (lockOf: (i: number) => StepLock, acquirers: number, holdMs: (i: number) => number): Promise<ReturnType<typeof occupancy>> => {
  const count = occupancy();
  await Promise.all(
    Array.from({ length: acquirers }, async (_, i) => {
      const release = await lockOf(i).acquire(KEY);
      count.enter();
      await pause(holdMs(i));
      count.leave();
      await release();
    }),
  );
  return count;
};

const lockFile = (key = KEY): string => path.join(locks, `${key}.lock`);

const writeRecord = (record: Record<string, unknown>, ageMs = 0, key = KEY): string => {
  fs.mkdirSync(locks, { recursive: true });
  const file = lockFile(key);
  fs.writeFileSync(file, JSON.stringify(record));
  if (ageMs > 0) {
    const then = new Date(Date.now() - ageMs);
    fs.utimesSync(file, then, then);
  }
  return file;
};

const token = (c: string): string => c.repeat(32);

/** The pid of a process that has exited (and been reaped). */
const deadPid = (): number => {
  const child = spawnSync(process.execPath, ['-e', '']);
  if (child.pid === undefined) throw new Error('could not start a process');
  return child.pid;
};

const linuxIncarnation = (pid: number | 'self', start?: string): string => {
  const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const ns = /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))?.[1] ?? '';
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return `${boot}/${ns}/${start ?? stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
};

/** Fails a test that waits too long with a message, rather than at jest's timeout. */
const within = <A>(ms: number, p: Promise<A>): Promise<A> => {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms);
    }),
  ]);
};

const timed = async <A>(f: () => Promise<A>): Promise<{ value: A; ms: number }> => {
  const started = performance.now();
  const value = await f();
  return { value, ms: performance.now() - started };
};

// the memory lock

describe('createMemoryStepLock', () => {
  it('lets one holder at a time hold a key, however many ask at once', async () => {
    const lock = createMemoryStepLock();
    const count = await contend(() => lock, 50, (i) => i % 3);
    expect(count.entries).toBe(50);
    expect(count.max).toBe(1);
  });

  it('serves waiters first in, first out', async () => {
    const lock = createMemoryStepLock();
    const first = await lock.acquire(KEY);
    const order: number[] = [];
    const waiters = Array.from({ length: 10 }, (_, i) =>
      lock.acquire(KEY).then(async (release) => {
        order.push(i);
        await pause(1);
        await release();
      }),
    );
    await pause(5);
    expect(order).toEqual([]);
    await first();
    await Promise.all(waiters);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('keeps keys independent', async () => {
    const lock = createMemoryStepLock();
    const a = await lock.acquire(KEY);
    expect(await isFree(lock, OTHER_KEY)).toBe(true);
    expect(await isFree(lock)).toBe(false);
    await a();
  });

  it('ignores a second release: it does not let a second waiter in', async () => {
    const lock = createMemoryStepLock();
    const release = await lock.acquire(KEY);
    const b = lock.acquire(KEY);
    const c = lock.acquire(KEY);
    await release();
    await release();
    expect(await stateOf(b)).toBe('resolved');
    expect(await stateOf(c)).toBe('pending');
    const releaseB = await b;
    await releaseB();
    await releaseB();
    await (await c)();
    expect(await isFree(lock)).toBe(true);
  });

  it('rejects an aborted waiter with the abort reason, and the key passes to the next waiter', async () => {
    const lock = createMemoryStepLock();
    const release = await lock.acquire(KEY);
    const controller = new AbortController();
    const aborted = lock.acquire(KEY, { signal: controller.signal });
    const next = lock.acquire(KEY);
    controller.abort(new Error('no longer needed'));
    await expect(aborted).rejects.toThrow('no longer needed');
    await release();
    const releaseNext = await within(1_000, next);
    expect(await isFree(lock)).toBe(false);
    await releaseNext();
    expect(await isFree(lock)).toBe(true);
  });

  it('rejects at once when the signal is already aborted, holding nothing', async () => {
    const lock = createMemoryStepLock();
    await expect(lock.acquire(KEY, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    expect(await isFree(lock)).toBe(true);
  });

  it('never lets two contenders hold a key, whatever the order of acquires, releases and aborts', async () => {
    type Op = { readonly op: 'acquire'; readonly key: number } | { readonly op: 'release' | 'abort' | 'release-twice'; readonly pick: number };
    const ops = fc.array(
      fc.oneof(
        fc.record({ op: fc.constant('acquire' as const), key: fc.integer({ min: 0, max: 2 }) }),
        fc.record({ op: fc.constantFrom('release' as const, 'release-twice' as const, 'abort' as const), pick: fc.nat() }),
      ),
      { maxLength: 40 },
    );
    await fc.assert(
      fc.asyncProperty(ops, async (script: Op[]) => {
        const lock = createMemoryStepLock();
        interface Contender {
          readonly key: number;
          state: 'waiting' | 'holding' | 'released' | 'aborted';
          release?: ReleaseLock;
          readonly controller: AbortController;
        }
        const contenders: Contender[] = [];
        const granted: Contender[][] = [[], [], []];
        const holders = [0, 0, 0];
        const settle = () => new Promise((resolve) => setImmediate(resolve));
        const check = (): void => {
          for (let key = 0; key < 3; key++) {
            expect(holders[key]).toBeLessThanOrEqual(1);
            // liveness: a free key has no one waiting for it
            if (holders[key] === 0) expect(contenders.filter((c) => c.key === key && c.state === 'waiting')).toEqual([]);
          }
        };
        const releaseOne = async (c: Contender, twice: boolean): Promise<void> => {
          c.state = 'released';
          holders[c.key] = (holders[c.key] ?? 0) - 1;
          await c.release?.();
          if (twice) await c.release?.();
        };
        for (const step of script) {
          if (step.op === 'acquire') {
            const c: Contender = { key: step.key, state: 'waiting', controller: new AbortController() };
            contenders.push(c);
            lock.acquire(`key-${step.key}`, { signal: c.controller.signal }).then(
              (release) => {
                c.state = 'holding';
                c.release = release;
                holders[c.key] = (holders[c.key] ?? 0) + 1;
                granted[c.key]?.push(c);
              },
              () => void (c.state = 'aborted'),
            );
          } else if (step.op === 'abort') {
            const waiting = contenders.filter((c) => c.state === 'waiting');
            waiting[step.pick % Math.max(1, waiting.length)]?.controller.abort();
          } else {
            const holding = contenders.filter((c) => c.state === 'holding');
            const c = holding[step.pick % Math.max(1, holding.length)];
            if (c !== undefined) await releaseOne(c, step.op === 'release-twice');
          }
          await settle();
          check();
        }
        // drain: everyone still waiting gets the key in turn
        for (let holding = contenders.filter((c) => c.state === 'holding'); holding.length > 0; holding = contenders.filter((c) => c.state === 'holding')) {
          for (const c of holding) await releaseOne(c, false);
          await settle();
          check();
        }
        expect(contenders.filter((c) => c.state === 'waiting' || c.state === 'holding')).toEqual([]);
        // first in, first out: per key, the grants follow arrival order among those not aborted
        for (let key = 0; key < 3; key++) {
          expect(granted[key]).toEqual(contenders.filter((c) => c.key === key && c.state !== 'aborted'));
        }
      }),
      { numRuns: 60 },
    );
  });
});

// the file lock, in one process

describe('createFileStepLock in one process', () => {
  it('lets one holder at a time hold a key, across lock instances on the same directory', async () => {
    const instances = [createFileStepLock(locks, { pollMs: 3 }), createFileStepLock(locks, { pollMs: 3 }), createFileStepLock(locks, { pollMs: 3 })];
    const count = await contend((i) => instances[i % 3] as StepLock, 15, (i) => 2 + (i % 4));
    expect(count.entries).toBe(15);
    expect(count.max).toBe(1);
    expect(fs.readdirSync(locks)).toEqual([]);
  });

  it('rejects keys that are not hex hashes, creating nothing', async () => {
    const lock = createFileStepLock(locks);
    const bad = ['', 'abc', 'a'.repeat(15), 'a'.repeat(129), 'ABCDEF0123456789', '../../../etc/passwd', `${'a'.repeat(16)}/x`, `${'a'.repeat(16)}.lock`, 'g'.repeat(20), ` ${'a'.repeat(16)}`];
    for (const key of bad) await expect(lock.acquire(key)).rejects.toThrow(/Invalid step key/);
    await expect(lock.acquire(42 as never)).rejects.toThrow(/Invalid step key/);
    expect(fs.existsSync(locks)).toBe(false);
  });

  it('records the holder in the lock file and deletes it on release; a second release is harmless', async () => {
    const lock = createFileStepLock(locks);
    const release = await lock.acquire(KEY);
    const record = JSON.parse(fs.readFileSync(lockFile(), 'utf8')) as Record<string, unknown>;
    expect(record).toMatchObject({ pid: process.pid, host: os.hostname() });
    expect(record['token']).toMatch(/^[0-9a-f]{32}$/);
    expect(Math.abs(Date.now() - (record['at'] as number))).toBeLessThan(5_000);
    await release();
    expect(fs.existsSync(lockFile())).toBe(false);
    await release();
    const again = await lock.acquire(KEY);
    expect(fs.existsSync(lockFile())).toBe(true);
    await again();
    expect(fs.readdirSync(locks)).toEqual([]);
  });

  it('does not delete a lock file that is no longer its own on release', async () => {
    const release = await createFileStepLock(locks).acquire(KEY);
    const theirs = JSON.stringify({ pid: 1, host: 'elsewhere.example', token: token('e'), at: Date.now() });
    fs.rmSync(lockFile());
    fs.writeFileSync(lockFile(), theirs);
    await release();
    expect(fs.readFileSync(lockFile(), 'utf8')).toBe(theirs);
  });

  it('breaks at once a lock file left by a process of this machine that has exited', async () => {
    writeRecord({ pid: deadPid(), host: os.hostname(), token: token('d'), at: Date.now() });
    const { value: release, ms } = await timed(() => within(3_000, createFileStepLock(locks, { staleAfterMs: 60_000, pollMs: 10 }).acquire(KEY)));
    expect(ms).toBeLessThan(1_000);
    expect(fs.readFileSync(lockFile(), 'utf8')).toContain(`"pid":${process.pid}`);
    await release();
  });

  it('breaks at once a lock file whose pid now belongs to a newer process (Linux start time)', async () => {
    const live = process.ppid;
    writeRecord({ pid: live, host: os.hostname(), token: token('d'), at: Date.now(), proc: linuxIncarnation(live, '1') });
    const { value: release, ms } = await timed(() => within(3_000, createFileStepLock(locks, { staleAfterMs: 60_000, pollMs: 10 }).acquire(KEY)));
    expect(ms).toBeLessThan(1_000);
    await release();
  });

  it('breaks at once a lock file of a previous process that had this pid (a restarted container pid 1)', async () => {
    writeRecord({ pid: process.pid, host: os.hostname(), token: token('f'), at: Date.now(), proc: linuxIncarnation('self', '1') });
    const { value: release, ms } = await timed(() => within(3_000, createFileStepLock(locks, { staleAfterMs: 60_000, pollMs: 10 }).acquire(KEY)));
    expect(ms).toBeLessThan(1_000);
    await release();
  });

  it('never breaks a lock held by this very process (another lock instance, another worker thread), however old its file', async () => {
    const release = await createFileStepLock(locks, { staleAfterMs: 60_000 }).acquire(KEY);
    const old = new Date(Date.now() - 3_600_000);
    fs.utimesSync(lockFile(), old, old);
    const acquiring = createFileStepLock(locks, { staleAfterMs: 100, pollMs: 10 }).acquire(KEY);
    await pause(500);
    expect(await stateOf(acquiring)).toBe('pending');
    await release();
    await (await within(1_000, acquiring))();
  });

  it('never breaks the lock of a live process of this machine, however old its file', async () => {
    const live = process.ppid;
    writeRecord({ pid: live, host: os.hostname(), token: token('a'), at: Date.now(), proc: linuxIncarnation(live) }, 3_600_000);
    const acquiring = createFileStepLock(locks, { staleAfterMs: 100, pollMs: 10 }).acquire(KEY);
    await pause(600);
    expect(await stateOf(acquiring)).toBe('pending');
    fs.rmSync(lockFile()); // the holder releases
    await (await acquiring)();
  });

  it('breaks the lock of another host once its file is older than staleAfterMs', async () => {
    writeRecord({ pid: process.ppid, host: 'elsewhere.example', token: token('b'), at: Date.now() - 10_000 }, 10_000);
    const { value: release, ms } = await timed(() => createFileStepLock(locks, { staleAfterMs: 1_000, pollMs: 10 }).acquire(KEY));
    expect(ms).toBeLessThan(1_000);
    await release();
  });

  it('waits for the lock of another host until its file is older than staleAfterMs', async () => {
    writeRecord({ pid: process.ppid, host: 'elsewhere.example', token: token('b'), at: Date.now() });
    const { value: release, ms } = await timed(() => createFileStepLock(locks, { staleAfterMs: 600, pollMs: 10 }).acquire(KEY));
    expect(ms).toBeGreaterThan(450);
    expect(ms).toBeLessThan(3_000);
    await release();
  });

  it('breaks a lock file that has no readable record once it is older than staleAfterMs', async () => {
    fs.mkdirSync(locks);
    fs.writeFileSync(lockFile(), '');
    const { value: release, ms } = await timed(() => createFileStepLock(locks, { staleAfterMs: 400, pollMs: 10 }).acquire(KEY));
    expect(ms).toBeGreaterThan(300);
    await release();
  });

  it('keeps a held lock fresh: a waiter of another host with a short staleAfterMs gets it only after the release', async () => {
    const holder = createFileStepLock(locks, { staleAfterMs: 300, host: 'holder.example' });
    const waiter = createFileStepLock(locks, { staleAfterMs: 300, pollMs: 10 });
    const release = await holder.acquire(KEY);
    let acquiredAt = 0;
    const waiting = waiter.acquire(KEY).then((r) => {
      acquiredAt = performance.now();
      return r;
    });
    const ages: number[] = [];
    for (let t = 0; t < 15; t++) {
      await pause(100);
      ages.push(Date.now() - fs.statSync(lockFile()).mtimeMs);
    }
    expect(Math.max(...ages)).toBeLessThan(300);
    expect(acquiredAt).toBe(0);
    const releasedAt = performance.now();
    await release();
    await (await waiting)();
    expect(acquiredAt).toBeGreaterThanOrEqual(releasedAt);
  });

  it('lets a waiter give up through its signal, holding nothing and leaving the holder alone', async () => {
    const holder = createFileStepLock(locks);
    const other = createFileStepLock(locks, { pollMs: 5 });
    const release = await holder.acquire(KEY);
    const held = fs.readFileSync(lockFile(), 'utf8');
    const controller = new AbortController();
    // outcomes are observed from the start, so a rejection is never briefly unhandled
    const outcome = (p: Promise<unknown>) => p.then(() => 'acquired', (e: unknown) => e);
    const polling = outcome(other.acquire(KEY, { signal: controller.signal }));
    const queued = outcome(other.acquire(KEY, { signal: controller.signal })); // waits in memory behind `polling`
    await pause(50);
    controller.abort();
    expect(await polling).toMatchObject({ name: 'AbortError' });
    expect(await queued).toMatchObject({ name: 'AbortError' });
    expect(fs.readFileSync(lockFile(), 'utf8')).toBe(held);
    await release();
    expect(fs.readdirSync(locks)).toEqual([]);
    expect(await isFree(other)).toBe(true);
  });

  it('recovers when several waiters find the same dead holder at once, letting exactly one in', async () => {
    const dead = deadPid();
    for (let round = 0; round < 20; round++) {
      writeRecord({ pid: dead, host: os.hostname(), token: token('d'), at: Date.now() });
      const instances = Array.from({ length: 6 }, () => createFileStepLock(locks, { staleAfterMs: 60_000, pollMs: 2 }));
      const count = await within(5_000, contend((i) => instances[i % 6] as StepLock, 12, () => 1));
      expect(count.entries).toBe(12);
      expect(count.max).toBe(1);
      expect(fs.readdirSync(locks)).toEqual([]);
    }
  });

  it('recovers from a breaker that died while breaking (a stale marker)', async () => {
    const dead = deadPid();
    const file = writeRecord({ pid: dead, host: os.hostname(), token: token('d'), at: Date.now() });
    const marker = `${file}.${fs.statSync(file, { bigint: true }).ino}-${token('d')}.break`;
    fs.writeFileSync(marker, JSON.stringify({ pid: dead, host: os.hostname(), token: token('9'), at: Date.now() }));
    const { value: release, ms } = await timed(() => within(3_000, createFileStepLock(locks, { staleAfterMs: 60_000, pollMs: 10 }).acquire(KEY)));
    expect(ms).toBeLessThan(1_000);
    await release();
    expect(fs.readdirSync(locks)).toEqual([]);
  });

  it('waits while another breaker is breaking the same stale lock', async () => {
    const file = writeRecord({ pid: deadPid(), host: os.hostname(), token: token('d'), at: Date.now() });
    const marker = `${file}.${fs.statSync(file, { bigint: true }).ino}-${token('d')}.break`;
    // a live breaker on this machine (this process's parent stands in for it)
    fs.writeFileSync(marker, JSON.stringify({ pid: process.ppid, host: os.hostname(), token: token('9'), at: Date.now(), proc: linuxIncarnation(process.ppid) }));
    const acquiring = createFileStepLock(locks, { pollMs: 10 }).acquire(KEY);
    await pause(300);
    expect(await stateOf(acquiring)).toBe('pending');
    expect(fs.existsSync(file)).toBe(true);
    fs.rmSync(marker); // the breaker gave up without breaking
    await (await acquiring)();
  });

  it('rejects with an error naming the lock file when the file system refuses', async () => {
    fs.writeFileSync(path.join(dir, 'not-a-directory'), '');
    const lock = createFileStepLock(path.join(dir, 'not-a-directory', 'locks'));
    await expect(lock.acquire(KEY)).rejects.toThrow(path.join(dir, 'not-a-directory', 'locks', `${KEY}.lock`));
    await expect(lock.acquire(KEY)).rejects.toMatchObject({ name: 'StepcacheError', code: 'STORE_UNAVAILABLE' });
  });

  it('validates its options', () => {
    for (const staleAfterMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => createFileStepLock(locks, { staleAfterMs })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', field: 'staleAfterMs' }) as StepcacheError);
    }
    expect(() => createFileStepLock(locks, { pollMs: 0 })).toThrow(/pollMs/);
    expect(() => createFileStepLock(locks, { host: '' })).toThrow(/host/);
    expect(() => createFileStepLock('')).toThrow(StepcacheError);
  });
});

// bounded, reported waits

/** The outcome of a promise, observed from the start so that a rejection is never briefly unhandled. */
const outcomeOf = (p: Promise<ReleaseLock>): Promise<ReleaseLock | StepcacheError> => p.catch((e: unknown) => e as StepcacheError);

const expectTimeout = (outcome: unknown, ...mentions: readonly string[]): void => {
  expect(outcome).toBeInstanceOf(StepcacheError);
  const error = outcome as StepcacheError;
  expect(error.code).toBe('LOCK_TIMEOUT');
  for (const m of [KEY, 'maxWaitMs', ...mentions]) expect(error.message).toContain(m);
};

describe('bounded waits on the memory lock', () => {
  it('gives up after maxWaitMs with LOCK_TIMEOUT naming the key and the holder, and the queue goes on', async () => {
    const lock = createMemoryStepLock();
    const release = await lock.acquire(KEY);
    const bounded = outcomeOf(lock.acquire(KEY, { maxWaitMs: 50 }));
    const patient = lock.acquire(KEY, { maxWaitMs: Number.POSITIVE_INFINITY });
    expectTimeout(await within(5_000, bounded), `pid ${process.pid} on host ${os.hostname()}`, 'memory');
    expect(await stateOf(patient)).toBe('pending');
    await release();
    await (await within(1_000, patient))();
    expect(await isFree(lock)).toBe(true);
  });

  it('waits 10 minutes by default, and the lock can set another default', async () => {
    jest.useFakeTimers();
    try {
      const lock = createMemoryStepLock();
      await lock.acquire(KEY);
      let outcome: unknown = 'pending';
      void outcomeOf(lock.acquire(KEY)).then((o) => (outcome = o));
      await jest.advanceTimersByTimeAsync(DEFAULT_MAX_WAIT_MS - 1);
      expect(outcome).toBe('pending');
      await jest.advanceTimersByTimeAsync(1);
      expectTimeout(outcome);

      const quick = createMemoryStepLock({ maxWaitMs: 1_000 });
      await quick.acquire(KEY);
      let quickOutcome: unknown = 'pending';
      void outcomeOf(quick.acquire(KEY)).then((o) => (quickOutcome = o));
      await jest.advanceTimersByTimeAsync(1_000);
      expectTimeout(quickOutcome);
    } finally {
      jest.useRealTimers();
    }
  });

  it('reports a wait once after onWaitAfterMs, naming this process as the holder', async () => {
    const lock = createMemoryStepLock();
    const before = Date.now();
    const release = await lock.acquire(KEY);
    const waits: LockWait[] = [];
    const waiting = lock.acquire(KEY, { onWaitAfterMs: 30, onWait: (w) => void waits.push(w) });
    await pause(300);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatchObject({ key: KEY, location: 'memory', holder: { pid: process.pid, host: os.hostname() } });
    expect(waits[0]?.holder?.since).toBeGreaterThanOrEqual(before);
    expect(waits[0]?.waitedMs).toBeGreaterThan(0);
    await release();
    await (await waiting)();
    expect(waits).toHaveLength(1);
  });

  it('does not report a wait that ended before onWaitAfterMs', async () => {
    const lock = createMemoryStepLock();
    const release = await lock.acquire(KEY);
    const waits: LockWait[] = [];
    const waiting = lock.acquire(KEY, { onWaitAfterMs: 100, onWait: (w) => void waits.push(w) });
    await release();
    await (await waiting)();
    await (await lock.acquire(KEY, { onWaitAfterMs: 1, onWait: (w) => void waits.push(w) }))(); // free: no wait at all
    await pause(250);
    expect(waits).toEqual([]);
  });

  it('rejects invalid waiting limits with INVALID_OPTIONS naming the field', async () => {
    const lock = createMemoryStepLock();
    for (const maxWaitMs of [0, -1, Number.NaN, 2 ** 31]) {
      await expect(lock.acquire(KEY, { maxWaitMs })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'maxWaitMs' });
    }
    await expect(lock.acquire(KEY, { onWaitAfterMs: -5 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'onWaitAfterMs' });
    await expect(lock.acquire(KEY, { onWait: 'log' as never })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'onWait' });
    expect(() => createMemoryStepLock({ maxWaitMs: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', field: 'maxWaitMs' }) as StepcacheError);
    expect(await isFree(lock)).toBe(true);
  });
});

describe('describeLockHolder', () => {
  it('says who holds a lock and since when, with the date when it is not today', () => {
    const today = new Date(2026, 10, 30, 12, 3, 4).getTime();
    expect(describeLockHolder({ pid: 123, host: 'h', since: today }, today + 60_000)).toBe('pid 123 on host h since 12:03:04');
    expect(describeLockHolder({ pid: 123, host: 'h', since: today }, today + 2 * 86_400_000)).toBe('pid 123 on host h since 2026-11-30 12:03:04');
    expect(describeLockHolder(undefined)).toMatch(/cannot be read/);
  });
});

describe('bounded waits on the file lock', () => {
  it('gives up after maxWaitMs with LOCK_TIMEOUT naming the lock file and its holder, holding nothing', async () => {
    const holder = createFileStepLock(locks);
    const waiter = createFileStepLock(locks, { pollMs: 5 });
    const release = await holder.acquire(KEY);
    const held = fs.readFileSync(lockFile(), 'utf8');
    const polling = outcomeOf(waiter.acquire(KEY, { maxWaitMs: 150 }));
    const queued = outcomeOf(waiter.acquire(KEY, { maxWaitMs: 100 })); // waits in memory behind `polling`
    const mentions = [lockFile(), `pid ${process.pid} on host ${os.hostname()}`, `kill ${process.pid}`];
    expectTimeout(await within(5_000, queued), ...mentions);
    expectTimeout(await within(5_000, polling), ...mentions);
    expect(fs.readFileSync(lockFile(), 'utf8')).toBe(held);
    await release();
    expect(await isFree(waiter)).toBe(true);
    expect(fs.readdirSync(locks)).toEqual([]);
  });

  it('takes its default bound from the lock options, and a call can set its own', async () => {
    const holder = createFileStepLock(locks);
    const waiter = createFileStepLock(locks, { pollMs: 5, maxWaitMs: 100 });
    const release = await holder.acquire(KEY);
    const patient = waiter.acquire(KEY, { maxWaitMs: 60_000 });
    const otherwise = outcomeOf(createFileStepLock(locks, { pollMs: 5, maxWaitMs: 100 }).acquire(KEY));
    expectTimeout(await within(5_000, otherwise));
    await pause(200);
    expect(await stateOf(patient)).toBe('pending');
    await release();
    await (await within(2_000, patient))();
  });

  it('reports a wait once, with the holder its lock file records', async () => {
    const since = Date.now() - 3_000;
    writeRecord({ pid: 4242, host: 'elsewhere.example', token: token('b'), at: since });
    const waits: LockWait[] = [];
    const acquiring = createFileStepLock(locks, { pollMs: 10, staleAfterMs: 60_000 }).acquire(KEY, { onWaitAfterMs: 50, onWait: (w) => void waits.push(w) });
    await pause(400);
    expect(waits).toEqual([{ key: KEY, location: lockFile(), holder: { pid: 4242, host: 'elsewhere.example', since }, waitedMs: expect.any(Number) as number }]);
    expect(waits[0]?.waitedMs).toBeGreaterThan(0);
    fs.rmSync(lockFile()); // the holder releases
    await (await within(2_000, acquiring))();
    expect(waits).toHaveLength(1);
  });

  it('reports a wait on a lock held in this process, whose waiter queues in memory', async () => {
    const lock = createFileStepLock(locks, { pollMs: 5 });
    const release = await lock.acquire(KEY);
    const waits: LockWait[] = [];
    const waiting = lock.acquire(KEY, { onWaitAfterMs: 30, onWait: (w) => void waits.push(w) });
    await pause(300);
    expect(waits.map((w) => w.holder?.pid)).toEqual([process.pid]);
    await release();
    await (await within(2_000, waiting))();
  });

  it('does not report a wait that ended before onWaitAfterMs', async () => {
    const lock = createFileStepLock(locks, { pollMs: 5 });
    const release = await lock.acquire(KEY);
    const waits: LockWait[] = [];
    const waiting = createFileStepLock(locks, { pollMs: 5 }).acquire(KEY, { onWaitAfterMs: 150, onWait: (w) => void waits.push(w) });
    await release();
    await (await within(2_000, waiting))();
    await pause(300);
    expect(waits).toEqual([]);
  });

  it('goes on waiting when onWait throws', async () => {
    const release = await createFileStepLock(locks).acquire(KEY);
    let calls = 0;
    const waiting = createFileStepLock(locks, { pollMs: 5 }).acquire(KEY, {
      onWaitAfterMs: 20,
      onWait: () => {
        calls++;
        throw new Error('the logger broke');
      },
    });
    await pause(200);
    expect(calls).toBe(1);
    expect(await stateOf(waiting)).toBe('pending');
    await release();
    await (await within(2_000, waiting))();
  });

  it('reports and names an unknown holder when the lock file is damaged', async () => {
    fs.mkdirSync(locks);
    fs.writeFileSync(lockFile(), 'not a record');
    const waits: LockWait[] = [];
    const outcome = await within(
      5_000,
      outcomeOf(createFileStepLock(locks, { pollMs: 5, staleAfterMs: 60_000 }).acquire(KEY, { maxWaitMs: 200, onWaitAfterMs: 20, onWait: (w) => void waits.push(w) })),
    );
    expect(waits.map((w) => w.holder)).toEqual([undefined]);
    expectTimeout(outcome, lockFile(), 'cannot be read', 'no readable record', `delete ${lockFile()}`);
    expect(fs.readFileSync(lockFile(), 'utf8')).toBe('not a record');
  });

  it('validates its waiting limits', async () => {
    expect(() => createFileStepLock(locks, { maxWaitMs: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', field: 'maxWaitMs' }) as StepcacheError);
    expect(() => createFileStepLock(locks, { onWaitAfterMs: Number.NaN })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', field: 'onWaitAfterMs' }) as StepcacheError);
    await expect(createFileStepLock(locks).acquire(KEY, { maxWaitMs: -1 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'maxWaitMs' });
    expect(fs.existsSync(locks)).toBe(false);
  });
});

describe('lock files stamped in the future, damaged, or left by dead processes', () => {
  const future = (file: string, aheadMs: number): void => {
    const then = new Date(Date.now() + aheadMs);
    fs.utimesSync(file, then, then);
  };

  it('breaks a lock file stamped in the future once this waiter has seen it unchanged for staleAfterMs', async () => {
    future(writeRecord({ pid: 4242, host: 'elsewhere.example', token: token('b'), at: Date.now() + 3_600_000 }), 3_600_000);
    const acquiring = createFileStepLock(locks, { staleAfterMs: 400, pollMs: 10 }).acquire(KEY);
    await pause(100);
    expect(await stateOf(acquiring)).toBe('pending');
    const release = await within(5_000, acquiring);
    expect(fs.readFileSync(lockFile(), 'utf8')).toContain(`"pid":${process.pid}`);
    await release();
  });

  it('does not break a lock stamped in the future while its holder keeps refreshing it', async () => {
    const file = writeRecord({ pid: 4242, host: 'elsewhere.example', token: token('b'), at: Date.now() });
    let ahead = 3_600_000;
    future(file, ahead);
    const heartbeat = setInterval(() => future(file, (ahead += 1_000)), 40); // a holder whose clock runs an hour ahead
    try {
      const acquiring = createFileStepLock(locks, { staleAfterMs: 200, pollMs: 10 }).acquire(KEY);
      await pause(800);
      expect(await stateOf(acquiring)).toBe('pending');
      clearInterval(heartbeat); // the holder stops: its file goes stale
      await (await within(5_000, acquiring))();
    } finally {
      clearInterval(heartbeat);
    }
  });

  it('breaks at once a lock file stamped in the future by a process of this machine that has exited', async () => {
    future(writeRecord({ pid: deadPid(), host: os.hostname(), token: token('d'), at: Date.now() + 3_600_000 }), 3_600_000);
    await (await within(5_000, createFileStepLock(locks, { staleAfterMs: 60_000, pollMs: 10 }).acquire(KEY)))();
  });

  it('lets exactly one waiter at a time in when several find the same future-stamped lock', async () => {
    for (let round = 0; round < 5; round++) {
      future(writeRecord({ pid: 4242, host: 'elsewhere.example', token: token('b'), at: Date.now() }), 3_600_000);
      const instances = Array.from({ length: 4 }, () => createFileStepLock(locks, { staleAfterMs: 100, pollMs: 2 }));
      const count = await within(10_000, contend((i) => instances[i % 4] as StepLock, 8, () => 1));
      expect(count.entries).toBe(8);
      expect(count.max).toBe(1);
      expect(fs.readdirSync(locks)).toEqual([]);
    }
  });

  it('breaks damaged lock files (binary garbage, a huge file, a bare number) once stale, stamped in the past or the future', async () => {
    const damaged: ReadonlyArray<string | Buffer> = [Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x22]), 'x'.repeat(100_000), '42', 'null', '{"pid":'];
    for (const [i, content] of damaged.entries()) {
      fs.mkdirSync(locks, { recursive: true });
      fs.writeFileSync(lockFile(), content);
      future(lockFile(), i % 2 === 0 ? 3_600_000 : -10);
      await (await within(5_000, createFileStepLock(locks, { staleAfterMs: 100, pollMs: 10 }).acquire(KEY)))();
      expect(fs.readdirSync(locks)).toEqual([]);
    }
  });

  it('recovers from a stale break marker stamped in the future', async () => {
    const file = writeRecord({ pid: 4242, host: 'elsewhere.example', token: token('b'), at: 0 }, 3_600_000);
    const marker = `${file}.${fs.statSync(file, { bigint: true }).ino}-${token('b')}.break`;
    fs.writeFileSync(marker, JSON.stringify({ pid: 4343, host: 'elsewhere.example', token: token('9'), at: Date.now() }));
    future(marker, 3_600_000);
    await (await within(5_000, createFileStepLock(locks, { staleAfterMs: 200, pollMs: 10 }).acquire(KEY)))();
    expect(fs.readdirSync(locks)).toEqual([]);
  });
});

describe('unusable lock folders', () => {
  it('is STORE_UNAVAILABLE naming the folder when a file is where the folder should be', async () => {
    fs.writeFileSync(locks, 'a file');
    const outcome = await outcomeOf(createFileStepLock(locks).acquire(KEY));
    expect(outcome).toMatchObject({ name: 'StepcacheError', code: 'STORE_UNAVAILABLE' });
    expect((outcome as StepcacheError).message).toContain(`The lock folder ${locks} cannot be used`);
    expect((outcome as StepcacheError).message).toContain('is a file');
    expect(fs.readFileSync(locks, 'utf8')).toBe('a file');
  });

  it('is STORE_UNAVAILABLE naming the lock file when a folder is where the lock file should be', async () => {
    fs.mkdirSync(lockFile(), { recursive: true });
    const outcome = await outcomeOf(createFileStepLock(locks, { pollMs: 5 }).acquire(KEY));
    expect(outcome).toMatchObject({ name: 'StepcacheError', code: 'STORE_UNAVAILABLE' });
    expect((outcome as StepcacheError).message).toContain(lockFile());
  });

  it('is STORE_UNAVAILABLE naming the folder when this process may not write in it', async () => {
    fs.mkdirSync(locks);
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(locks, 0o555);
    // root writes anywhere: a process of an unprivileged user stands in for an ordinary one
    const asRoot = process.getuid?.() === 0;
    const script = `require('./src/lock').createFileStepLock(${JSON.stringify(locks)}).acquire(${JSON.stringify(KEY)}).then(() => console.log('{}'), (e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })))`;
    const outcome = asRoot
      ? (JSON.parse(spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: path.join(__dirname, '..'), uid: 65534, gid: 65534, encoding: 'utf8' }).stdout) as unknown)
      : await outcomeOf(createFileStepLock(locks).acquire(KEY));
    expect(outcome).toMatchObject({ name: 'StepcacheError', code: 'STORE_UNAVAILABLE', message: expect.stringContaining(`The lock folder ${locks} cannot be used`) as string });
    expect((outcome as StepcacheError).message).toContain('EACCES');
    expect(fs.readdirSync(locks)).toEqual([]);
  });
});

// the file lock, across processes

const CHILD = path.join(__dirname, 'support', 'lock-child.ts');

interface Child {
  readonly pid: number;
  readonly kill: (signal: NodeJS.Signals) => void;
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly stderr: string }>;
}

/** Starts test/support/lock-child.ts in plain node with tsx's loader: one process, whose pid is the holder's. */
const startChild = (args: readonly string[]): Child => {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { cwd: path.join(__dirname, '..'), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  if (child.pid === undefined) throw new Error('could not start a child process');
  const started: Child = { pid: child.pid, kill: (s) => void child.kill(s), exited };
  running.add(started);
  void exited.then(() => running.delete(started));
  return started;
};

interface LogLine {
  readonly what: string;
  readonly pid: number;
  readonly at: number;
}

const readLog = (log: string): LogLine[] =>
  fs.existsSync(log)
    ? fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const [what = '', pid = '', at = ''] = l.split(' ');
          return { what, pid: Number(pid), at: Number(at) };
        })
    : [];

const waitForLog = async (log: string, done: (lines: LogLine[]) => boolean, timeoutMs = 15_000): Promise<LogLine[]> => {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const lines = readLog(log);
    if (done(lines)) return lines;
    if (Date.now() > until) throw new Error(`timed out waiting; log so far:\n${lines.map((l) => `${l.what} ${l.pid} ${l.at}`).join('\n')}`);
    await pause(10);
  }
};

/** Holders in log order: every enter is followed by the same process's leave before anyone else enters. */
const expectOneHolderAtATime = (lines: readonly LogLine[]): number[] => {
  const turns = lines.filter((l) => l.what === 'enter' || l.what === 'leave');
  const holders: number[] = [];
  for (let i = 0; i < turns.length; i += 2) {
    const enter = turns[i] as LogLine;
    const leave = turns[i + 1];
    expect(enter.what).toBe('enter');
    expect(leave).toMatchObject({ what: 'leave', pid: enter.pid });
    if (i > 0) expect(enter.at).toBeGreaterThanOrEqual((turns[i - 1] as LogLine).at);
    holders.push(enter.pid);
  }
  return holders;
};

describe('createFileStepLock across processes', () => {
  it('lets 8 processes that want the same key at the same moment hold it one after another', async () => {
    const log = path.join(dir, 'log');
    const go = path.join(dir, 'go');
    const children = Array.from({ length: 8 }, () => startChild([locks, KEY, log, 'hold', '50', '30000', go]));
    await waitForLog(log, (lines) => lines.filter((l) => l.what === 'ready').length === 8);
    fs.writeFileSync(go, '');
    const exits = await within(15_000, Promise.all(children.map((c) => c.exited)));
    expect(exits.map((e) => e.stderr)).toEqual(Array(8).fill(''));
    expect(exits.map((e) => e.code)).toEqual(Array(8).fill(0));
    const holders = expectOneHolderAtATime(readLog(log));
    expect(new Set(holders)).toEqual(new Set(children.map((c) => c.pid)));
    expect(fs.readdirSync(locks)).toEqual([]);
  });

  it('hands the key on within seconds when its holder is killed with SIGKILL', async () => {
    const log = path.join(dir, 'log');
    const holder = startChild([locks, KEY, log, 'forever', '0', '60000']);
    await waitForLog(log, (lines) => lines.some((l) => l.what === 'enter' && l.pid === holder.pid));
    // staleAfterMs 60 s: only seeing that the holder's pid is gone can let them in within the test
    const waiters = Array.from({ length: 3 }, () => startChild([locks, KEY, log, 'hold', '30', '60000']));
    await waitForLog(log, (lines) => lines.filter((l) => l.what === 'ready').length === 4);
    await pause(200);
    expect(readLog(log).filter((l) => l.what === 'enter')).toHaveLength(1);
    const killedAt = Date.now();
    holder.kill('SIGKILL');
    expect((await holder.exited).signal).toBe('SIGKILL');
    const exits = await within(8_000, Promise.all(waiters.map((c) => c.exited)));
    expect(exits.map((e) => e.stderr)).toEqual(['', '', '']);
    const lines = readLog(log).filter((l) => l.pid !== holder.pid);
    const firstEnter = lines.find((l) => l.what === 'enter');
    expect(firstEnter).toBeDefined();
    expect((firstEnter as LogLine).at - killedAt).toBeLessThan(5_000);
    expect(new Set(expectOneHolderAtATime(lines))).toEqual(new Set(waiters.map((w) => w.pid)));
    expect(fs.readdirSync(locks)).toEqual([]);
  });

  it('does not break the lock of a process of this machine whose event loop is blocked by a synchronous step', async () => {
    const log = path.join(dir, 'log');
    const holder = startChild([locks, KEY, log, 'block', '1000', '300']);
    const [entered] = await waitForLog(log, (lines) => lines.some((l) => l.what === 'enter')).then((lines) => lines.filter((l) => l.what === 'enter'));
    const release = await within(10_000, createFileStepLock(locks, { staleAfterMs: 300, pollMs: 10 }).acquire(KEY));
    const acquiredAt = Date.now();
    await release();
    expect((await holder.exited).code).toBe(0);
    const left = readLog(log).find((l) => l.what === 'leave');
    expect(entered).toBeDefined();
    expect(left).toBeDefined();
    expect(acquiredAt).toBeGreaterThanOrEqual((left as LogLine).at);
  });

  it('reports a live holder process and its pid, times out naming it, and hands over once it is killed', async () => {
    const log = path.join(dir, 'log');
    const holder = startChild([locks, KEY, log, 'forever', '0', '60000']);
    await waitForLog(log, (lines) => lines.some((l) => l.what === 'enter' && l.pid === holder.pid));
    const waits: LockWait[] = [];
    const lock = createFileStepLock(locks, { staleAfterMs: 60_000, pollMs: 10 });
    const patient = lock.acquire(KEY, { onWaitAfterMs: 50, onWait: (w) => void waits.push(w) });
    const bounded = await within(5_000, outcomeOf(createFileStepLock(locks, { staleAfterMs: 60_000, pollMs: 10 }).acquire(KEY, { maxWaitMs: 300 })));
    expectTimeout(bounded, `pid ${holder.pid} on host ${os.hostname()}`, `kill ${holder.pid}`, lockFile());
    expect(waits).toMatchObject([{ key: KEY, location: lockFile(), holder: { pid: holder.pid, host: os.hostname() } }]);
    expect(await stateOf(patient)).toBe('pending');
    holder.kill('SIGKILL');
    expect((await holder.exited).signal).toBe('SIGKILL');
    const release = await within(8_000, patient);
    expect(fs.readFileSync(lockFile(), 'utf8')).toContain(`"pid":${process.pid}`);
    await release();
    expect(waits).toHaveLength(1);
  });

  it('deletes the lock files a process still holds when it exits', async () => {
    const log = path.join(dir, 'log');
    const child = startChild([locks, KEY, log, 'exit', '0', '30000']);
    const { code, stderr } = await child.exited;
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(readLog(log).map((l) => l.what)).toEqual(['ready', 'enter']);
    expect(fs.readdirSync(locks)).toEqual([]);
  });
});
