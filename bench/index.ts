/**
 * The benchmark behind `npm run bench`: what a cached step costs, and what storing and loading a
 * large artifact costs next to plain file I/O. Every figure is measured side by side with its
 * baseline in the same run (the two alternate within each repetition, A first then B first), and
 * the table reports medians over repetitions, their ratio and the goal.
 *
 * 1. Cached step: {@link STEP_COUNT}-step pipelines (a chain, and independent steps) served entirely
 *    from the cache, per step, in this process and in a fresh child process; next to plain calls
 *    of the same step functions. Goal: at most 0.1 ms per cached step.
 * 2. Big hit: a cached run plus loading (and verifying) its 80 MB Float64Array output, next to
 *    the fastest raw read of the same artifact file (the faster of `readFileSync` and
 *    `fs.promises.readFile`, both timed in every repetition). Goal: at most 1.1x. The store hashes
 *    the artifact in full on its first load (unmeasured); the measured loads find the file's stamp
 *    unchanged since and read it without hashing it again (see `createFileArtifactStore`); the
 *    1 GB hit, in a fresh process, hashes in full.
 * 3. Big miss: a run that executes the step and stores its 80 MB output, in a warm store and as the
 *    first run in a new store, next to the fastest raw write of the same bytes to a new file in the
 *    store directory (the faster of `writeFileSync` and `fs.promises.writeFile`). Goal: at most 1.3x.
 *    And a 1 GB miss and hit, each in a fresh process, next to the fastest raw write and read, with
 *    the peak memory of each (goal: under 1.2x the artifact's size); see `bench/big-artifact.ts`.
 * 4. Alone, on the big output: the snapshot a step's output is serialized into when it returns
 *    to a store that cannot store at once (a copy; the file store stores at once instead), and
 *    content hashing without and with a secret (notes only).
 * 5. S3 memory: a 256 MiB artifact stored to and loaded from an S3-compatible server (s3rver on
 *    127.0.0.1), each in a fresh process; how far memory rises beyond the artifact's own buffer.
 *    Goal: at most 1.2 x part size x queue size (see `bench/s3-memory.ts`).
 * 5. Team store: a fully cached 20-step pipeline on PostgreSQL + s3rver (named by URL), next to the
 *    same pipeline on the embedded store. Goal: at most 2x and under 30 ms (see `bench/team-store.ts`).
 * 6. Records: `runs list` and `cache ls` of a store with 10,000 runs (goal: 50 ms each beyond CLI
 *    start-up), a cached step's share of its run record (goal: 300 bytes), a run config of 40,000
 *    keys parsed and validated (goal: 1 s); see `bench/records.ts`.
 * 7. Whole process: a fully cached 5-step script run by `node` with the built package, through
 *    `require` and through `import`, next to a plain script doing the same work (goal: 1.05x); see
 *    `bench/whole-process.ts`.
 *
 * The exit code is 0 whatever the verdicts (the table is a report); it is 1 only when the
 * benchmark itself cannot run or a run does not behave as expected (for instance a step that
 * should have been cached executed).
 *
 * Environment: `BENCH_REPS` (7 to 11, default 11) sets the number of repetitions; `BENCH_ONLY=big`
 * measures only the big artifact (80 MB hit and miss, the parts of storing it, and with
 * `BENCH_ONLY=big` plus `BENCH_GB=1` the 1 GB rows) and prints their rows, spreads and notes.
 *
 * @packageDocumentation
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRunner, pipeline, silentLogger, step, type Run, type RunRecord, type Runner } from '../src/index';
import { keyedContentHashing, plainContentHashing, type ContentHashing } from '../src/hash/hashers';
import { serializeOutput } from '../src/store/serialize';
import { BIG_BYTES, measureBigArtifact } from './big-artifact';
import { isChildResult } from './cached-child';
import { collectGarbage, formatMs, gcExposed, interleave, median, renderTable, timeAsync, type Paired, type Row } from './measure';
import { MEMORY_GOAL_FACTOR, measureS3Memory, PART_SIZE, QUEUE_SIZE, type Rise, type S3MemoryResult } from './s3-memory';
import { SHAPES, STEP_COUNT, type ShapeName } from './pipelines';
import { measureTeamStore, teamStoreRow } from './team-store';
import { measureRecords, RUN_COUNT } from './records';
import { measureWholeProcess, SCRIPT_STEPS } from './whole-process';
import { CHAIN_LENGTHS, chainRows, measureChains } from './chains';

/** Repetitions of every measurement. */
export const REPS = Math.min(11, Math.max(7, Math.round(Number(process.env['BENCH_REPS'] ?? 11)) || 11));

/** Elements of the big Float64Array output (80 MB). */
export const BIG_LENGTH = 10_000_000;

/** The goal for the cost of one cached step, in milliseconds. */
export const CACHED_STEP_GOAL_MS = 0.025;
/** The goal for a big cached hit, as a multiple of a raw read of the artifact file. */
export const BIG_HIT_GOAL = 1.1;
/** The goal for a big miss, as a multiple of a raw write of the same bytes. */
export const BIG_MISS_GOAL = 1.3;

/** How many CPUs other processes may use during the big measurements before the report warns. */
const BUSY_CPUS = 0.25;

/** Milliseconds of CPU time spent so far: by every process on the machine, and by this one. */
const cpuTimes = (): { readonly all: number; readonly own: number; readonly at: number } => {
  const all = os.cpus().reduce((sum, c) => sum + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);
  const own = process.cpuUsage();
  return { all, own: (own.user + own.system) / 1000, at: performance.now() };
};

/** How many CPUs other processes kept busy on average since `since`, not counting `childCpuMs` of our own children. */
const otherCpus = (since: ReturnType<typeof cpuTimes>, childCpuMs = 0): number => {
  const now = cpuTimes();
  return Math.max(0, now.all - since.all - (now.own - since.own) - childCpuMs) / (now.at - since.at);
};

const REPO = path.resolve(__dirname, '..');
const CHILD = path.join(__dirname, 'cached-child.ts');
const MB = 1_000_000;

// checks

const fail = (message: string): never => {
  throw new Error(`benchmark: ${message}`);
};

const expectStatuses = (run: RunRecord, status: 'cached' | 'executed', count: number, what: string): void => {
  const statuses = Object.values(run.steps).map((s) => s.status);
  const matching = statuses.filter((s) => s === status).length;
  if (statuses.length !== count || matching !== count) {
    fail(`${what}: expected ${count} ${status} steps, got ${statuses.length} steps of which ${matching} ${status}`);
  }
};

// 1. cached steps

interface CachedStepResult {
  /** Per-step milliseconds of cached runs (a) and of plain calls (b), in this process. */
  readonly inProcess: Paired;
  /** Per-step milliseconds of cached runs right after a forced full garbage collection, in this process. */
  readonly afterGc: readonly number[];
  /** Per-step milliseconds of the first (cached) run (a) and of the first plain calls (b) in a fresh process. */
  readonly child: Paired;
  /** The size of a cached run's record as JSON, which every run adds to the metadata store. */
  readonly recordBytes: number;
  /** How many CPUs other processes kept busy on average during these measurements. */
  readonly others: number;
}

/** The node flags this process runs with (the TypeScript loader, `--expose-gc`), without profiling flags. */
const childExecArgv = (): string[] => process.execArgv.filter((a) => !/^--(cpu|heap)-prof/.test(a) && a !== '--prof');

const runChild = (dir: string, shape: ShapeName, order: 'run-first' | 'plain-first'): Promise<{ runMs: number; plainMs: number; cpuMs: number }> =>
  new Promise((resolve, reject) => {
    execFile(process.execPath, [...childExecArgv(), CHILD, dir, shape, order], { cwd: REPO, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`the child process failed: ${error.message}\n${stderr}`));
      const line = stdout.trim().split('\n').pop() ?? '';
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        return reject(new Error(`the child process printed no result: ${JSON.stringify(stdout)}\n${stderr}`));
      }
      if (!isChildResult(parsed)) return reject(new Error(`the child process printed ${line}`));
      if (parsed.cached !== parsed.steps) return reject(new Error(`in the child process, ${parsed.steps - parsed.cached} of ${parsed.steps} steps were not cached`));
      resolve({ runMs: parsed.runMs, plainMs: parsed.plainMs, cpuMs: parsed.cpuMs });
    });
  });

/** How many passes of a plain computation take about `targetMs` (at least 1). */
const calibrate = (plain: () => number, targetMs: number): number => {
  let passes = 1;
  for (;;) {
    const started = performance.now();
    let sink = 0;
    for (let i = 0; i < passes; i++) sink += plain();
    const ms = performance.now() - started;
    if (!Number.isFinite(sink) || ms >= targetMs || passes >= 1 << 20) return passes;
    passes *= 2;
  }
};

/** Untimed cached runs after the executing one, so that the in-process figure is the warm steady state (with 3, the first timed runs still paid for compiling the runner and collecting the executing run's garbage). */
const WARM_CACHED_RUNS = 10;

const measureCachedSteps = async (runner: Runner, dir: string, shapeName: ShapeName): Promise<CachedStepResult> => {
  const shape = SHAPES[shapeName];
  const first = await runner.run(shape.pipeline);
  expectStatuses(first, 'executed', STEP_COUNT, `the first run of the ${shape.label}`);
  for (let i = 0; i < WARM_CACHED_RUNS; i++) expectStatuses(await runner.run(shape.pipeline), 'cached', STEP_COUNT, `a warm-up run of the ${shape.label}`);
  const passes = calibrate(shape.plain, 2);
  let sink = 0;

  let recordBytes = 0;
  const cachedRun = async (): Promise<number> => {
    let run: RunRecord | undefined;
    const ms = await timeAsync(async () => {
      run = await runner.run(shape.pipeline);
    });
    const record = run ?? fail('no run');
    expectStatuses(record, 'cached', STEP_COUNT, `a cached run of the ${shape.label}`);
    recordBytes = Buffer.byteLength(JSON.stringify(record));
    return ms / STEP_COUNT;
  };
  const plainCalls = async (): Promise<number> => {
    const started = performance.now();
    for (let i = 0; i < passes; i++) sink += shape.plain();
    return (performance.now() - started) / (passes * STEP_COUNT);
  };
  // No forced collection between these samples: a forced full collection deoptimizes the
  // runner's optimized code (see the after-GC figure), which a long-lived process does not do
  // before every run. The garbage a run makes is collected as it would be, within the runs.
  const window = cpuTimes();
  let childCpuMs = 0;
  const inProcess = await interleave(REPS, false, cachedRun, plainCalls);

  // Diagnostic: the same cached run right after a forced full collection.
  const afterGc: number[] = [];
  if (gcExposed()) {
    for (let rep = 0; rep < REPS; rep++) {
      collectGarbage();
      afterGc.push(await cachedRun());
    }
  }

  const child: Paired = { a: [], b: [] };
  for (let rep = 0; rep < REPS; rep++) {
    const r = await runChild(dir, shapeName, rep % 2 === 0 ? 'run-first' : 'plain-first');
    child.a.push(r.runMs / STEP_COUNT);
    child.b.push(r.plainMs / STEP_COUNT);
    childCpuMs += r.cpuMs;
  }
  const others = otherCpus(window, childCpuMs);
  if (!Number.isFinite(sink)) fail('the plain computation went wrong');
  return { inProcess, afterGc, child, recordBytes, others };
};

// 2 and 3. a big artifact

/** Where the embedded store keeps an artifact: `<dir>/artifacts/<first two characters>/<id>`, or found by scanning. */
const artifactFile = (dir: string, id: string, size: number): string => {
  const artifacts = path.join(dir, 'artifacts');
  const expected = path.join(artifacts, id.slice(0, 2), id);
  if (fs.existsSync(expected) && fs.statSync(expected).size === size) return expected;
  for (const entry of fs.readdirSync(artifacts, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name === id) return path.join(entry.parentPath, entry.name);
  }
  return fail(`artifact ${id} not found under ${artifacts}`);
};

const outputFileOf = (dir: string, run: RunRecord, stepName: string): string => {
  const descriptor = run.steps[stepName]?.outputs?.['output'] ?? fail(`step ${stepName} recorded no output`);
  return artifactFile(dir, descriptor.id, descriptor.size);
};

const sameBytes = (x: Float64Array, y: Float64Array): boolean =>
  Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));

interface BigHitResult {
  /** Milliseconds of a cached run plus loading its output (a), and of a raw read of the artifact file (b). */
  readonly paired: Paired;
  /** Of (a), the milliseconds spent in `runner.run`; the rest is `run.output('x')`. */
  readonly runMs: readonly number[];
  /** The faster raw read, whose samples are (b). */
  readonly faster: string;
}

const measureBigHit = async (root: string, data: Float64Array): Promise<BigHitResult> => {
  const dir = path.join(root, 'big-hit');
  const big = step(function big_output(): Float64Array {
    return data;
  });
  const p = pipeline('bench_big_hit', (p) => ({ x: p.call(big) }));
  const runner = createRunner({ dir, logger: silentLogger });
  try {
    const first = await runner.run(p);
    expectStatuses(first, 'executed', 1, 'the first run of the big pipeline');
    const file = outputFileOf(dir, first, 'big_output');
    // Flush the new artifact to disk now, so that its write-back does not land in a measurement.
    const fd = fs.openSync(file, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const check = await (await runner.run(p)).output('x');
    if (!(check instanceof Float64Array) || !sameBytes(check, data)) fail('the loaded output differs from what the step returned');

    const runMs: number[] = [];
    const hit = async (): Promise<number> => {
      let run: Run<{ readonly x: Float64Array }> | undefined;
      let x: Float64Array | undefined;
      let ran = 0;
      const ms = await timeAsync(async () => {
        const started = performance.now();
        run = await runner.run(p);
        ran = performance.now() - started;
        x = await run.output('x');
      });
      expectStatuses(run ?? fail('no run'), 'cached', 1, 'a cached run of the big pipeline');
      if (x?.length !== BIG_LENGTH) fail('the loaded output has the wrong length');
      runMs.push(ran);
      return ms;
    };
    // The baseline is the fastest raw way to read the file: both ways are timed in every
    // repetition (in alternating order) and the faster median is the baseline.
    const reads = { sync: [] as number[], promise: [] as number[] };
    const rawRead = async (rep: number): Promise<number> => {
      const ways = rep % 2 === 0 ? (['sync', 'promise'] as const) : (['promise', 'sync'] as const);
      for (const way of ways) {
        collectGarbage();
        let bytes: Buffer | undefined;
        const ms = await timeAsync(async () => {
          bytes = way === 'sync' ? fs.readFileSync(file) : await fs.promises.readFile(file);
        });
        if (bytes?.byteLength !== data.byteLength) fail('the raw read has the wrong length');
        reads[way].push(ms);
      }
      return Math.min(reads.sync[reads.sync.length - 1] as number, reads.promise[reads.promise.length - 1] as number);
    };
    await hit(); // warm-up, unmeasured
    await rawRead(0);
    runMs.length = 0;
    reads.sync.length = 0;
    reads.promise.length = 0;
    // Every sample allocates 80 MB: collect the previous one's before each.
    const paired = await interleave(REPS, true, hit, rawRead);
    const faster = median(reads.sync) <= median(reads.promise) ? 'readFileSync' : 'fs.promises.readFile';
    return { paired: { a: paired.a, b: faster === 'readFileSync' ? reads.sync : reads.promise }, runMs, faster };
  } finally {
    await runner.close();
  }
};

interface BigMissResult {
  /** Milliseconds of an executing run in a warm store (a), and of the faster raw write (b). */
  readonly warm: Paired;
  /** Milliseconds of the first executing run in a new store (a), and of the faster raw write (b). */
  readonly first: Paired;
  /** The faster raw write, whose samples are (b). */
  readonly faster: string;
}

const measureBigMiss = async (root: string, data: Float64Array): Promise<BigMissResult> => {
  const dir = path.join(root, 'big-miss');
  const big = step(function big_output(_input: { rep: number }): Float64Array {
    return data;
  });
  const p = pipeline('bench_big_miss', (p, { rep }: { rep: number }) => ({ x: p.call(big, { rep }) }));
  const runner = createRunner({ dir, logger: silentLogger });
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let runs = 0;
  let rawFiles = 0;
  try {
    // Every sample writes a fresh file: the raw write a new one, the store a new artifact (its
    // identical predecessor is removed after each sample, unmeasured, as the raw file is).
    const miss = async (): Promise<number> => {
      let run: RunRecord | undefined;
      const rep = runs++;
      const ms = await timeAsync(async () => {
        run = await runner.run(p, { rep });
      });
      const executed = run ?? fail('no run');
      expectStatuses(executed, 'executed', 1, 'a missing run of the big pipeline');
      await fs.promises.rm(outputFileOf(dir, executed, 'big_output'));
      return ms;
    };
    // The baseline is the fastest raw way to write a new file: both ways in every repetition.
    const writes = { sync: [] as number[], promise: [] as number[] };
    const rawWrite = async (rep: number): Promise<number> => {
      const ways = rep % 2 === 0 ? (['sync', 'promise'] as const) : (['promise', 'sync'] as const);
      for (const way of ways) {
        collectGarbage();
        const file = path.join(dir, `raw-write-${rawFiles++}.bin`);
        const ms = await timeAsync(async () => (way === 'sync' ? fs.writeFileSync(file, bytes) : await fs.promises.writeFile(file, bytes)));
        if (fs.statSync(file).size !== bytes.byteLength) fail('the raw write has the wrong length');
        await fs.promises.rm(file);
        writes[way].push(ms);
      }
      return 0;
    };
    // The first miss in a new store (its folders and database created on the way), each time in a
    // store of its own (with a runner of its own), next to the same raw writes.
    const firstMiss = async (rep: number): Promise<number> => {
      const fresh = createRunner({ dir: path.join(root, `big-first-miss-${rep}`), logger: silentLogger });
      try {
        let run: RunRecord | undefined;
        const ms = await timeAsync(async () => {
          run = await fresh.run(p, { rep: 0 });
        });
        expectStatuses(run ?? fail('no run'), 'executed', 1, 'a first run in a new store');
        return ms;
      } finally {
        await fresh.close();
        fs.rmSync(path.join(root, `big-first-miss-${rep}`), { recursive: true, force: true });
      }
    };
    await miss(); // warm-up (also creates the store), unmeasured
    await rawWrite(0);
    writes.sync.length = 0;
    writes.promise.length = 0;
    const warm = await interleave(REPS, true, miss, rawWrite);
    const first = await interleave(REPS, true, firstMiss, rawWrite);
    const faster = median(writes.sync) <= median(writes.promise) ? 'writeFileSync' : 'fs.promises.writeFile';
    const baseline = faster === 'writeFileSync' ? writes.sync : writes.promise;
    return { warm: { a: warm.a, b: baseline }, first: { a: first.a, b: baseline }, faster };
  } finally {
    await runner.close();
  }
};

interface HandOffParts {
  /** Milliseconds to serialize the big output: the snapshot copy taken when a step returns (part of the big miss). */
  readonly snapshotMs: readonly number[];
  /** Milliseconds to hash the big output's bytes by each content hashing: without a secret, and with one. */
  readonly plainHashMs: readonly number[];
  readonly keyedHashMs: readonly number[];
}

/** The parts of storing an output that the hand-off and a secret add, measured alone on the big output. */
const measureHandOffParts = async (data: Float64Array): Promise<HandOffParts> => {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const hashWith = async (hashing: ContentHashing): Promise<number> => {
    const hasher = await hashing.create();
    return timeAsync(async () => {
      for (let offset = 0; offset < bytes.byteLength; offset += 8 * 1024 * 1024) hasher.update(bytes.subarray(offset, offset + 8 * 1024 * 1024));
      hasher.digest();
    });
  };
  const keyed = keyedContentHashing('bench-secret');
  const parts = { snapshotMs: [] as number[], plainHashMs: [] as number[], keyedHashMs: [] as number[] };
  for (let i = 0; i < REPS; i++) {
    collectGarbage();
    parts.snapshotMs.push(await timeAsync(async () => void serializeOutput(data, 'auto')));
    collectGarbage();
    parts.plainHashMs.push(await hashWith(plainContentHashing));
    parts.keyedHashMs.push(await hashWith(keyed));
  }
  return parts;
};

// the report

const cachedRows = (label: string, r: CachedStepResult): Row[] =>
  (
    [
      ['in process', r.inProcess],
      ['fresh process', r.child],
    ] as const
  ).map(([where, samples]) => {
    const s = median(samples.a);
    const b = median(samples.b);
    return {
      measure: `cached step, ${label}, ${where} (per step)`,
      stepcache: formatMs(s),
      baseline: formatMs(b),
      ratio: s / b,
      goal: `<= ${CACHED_STEP_GOAL_MS} ms/step`,
      pass: s <= CACHED_STEP_GOAL_MS,
    };
  });

const ratioRow = (measure: string, samples: Paired, goal: number): Row => {
  const s = median(samples.a);
  const b = median(samples.b);
  return { measure, stepcache: formatMs(s), baseline: formatMs(b), ratio: s / b, goal: `<= ${goal}x baseline`, pass: s / b <= goal };
};

const mb = (bytes: number): string => `${(bytes / MB).toFixed(1)} MB`;
const throughputOf = (bytes: number, ms: number): string => `${formatMs(ms)} (${(bytes / MB / (ms / 1000)).toFixed(0)} MB/s)`;

/** The median over transfers of the larger memory rise (Buffers, whole process), against the budget of parts in flight. */
const memoryRow = (measure: string, rises: readonly Rise[], r: S3MemoryResult): Row => {
  const worst = median(rises.map((rise) => Math.max(rise.rss, rise.arrayBuffers)));
  return { measure, stepcache: mb(worst), baseline: mb(r.budget), ratio: worst / r.budget, goal: `<= ${MEMORY_GOAL_FACTOR} x part x queue`, pass: worst <= r.budget };
};

/** Every transfer's time and memory rises, for the notes. */
const transfers = (bytes: number, rises: readonly Rise[]): string =>
  rises.map((rise) => `${throughputOf(bytes, rise.ms)} Buffers +${mb(rise.arrayBuffers)} rss +${mb(rise.rss)}`).join('; ');

const spread = (name: string, samples: readonly number[], unit: (ms: number) => string): string => {
  const sorted = [...samples].sort((x, y) => x - y);
  return `${name}: min ${unit(sorted[0] ?? Number.NaN)}, median ${unit(median(sorted))}, max ${unit(sorted[sorted.length - 1] ?? Number.NaN)}`;
};

/** The first line of a report: what ran, on which node and machine, how loaded, how many repetitions. */
const headline = (title: string): string => {
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  return `${title}: node ${process.version}, ${os.cpus().length} CPUs (load average ${load}), ${REPS} repetitions, gc ${gcExposed() ? 'exposed' : 'NOT exposed (run with --expose-gc)'}`;
};

/** The big artifact's rows, spreads and notes only (`BENCH_ONLY=big`). */
const mainBig = async (): Promise<void> => {
  const started = performance.now();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-bench-'));
  console.log(`${headline('stepcache benchmark, big artifact only')}\n`);
  try {
    const data = new Float64Array(BIG_LENGTH);
    for (let i = 0; i < data.length; i++) data[i] = Math.random();
    const bigStart = cpuTimes();
    const hit = await measureBigHit(root, data);
    const miss = await measureBigMiss(root, data);
    const handOff = await measureHandOffParts(data);
    const others = otherCpus(bigStart);
    const gigabyte = process.env['BENCH_GB'] === '1' ? await measureBigArtifact() : { rows: [], notes: [] };
    const rows: Row[] = [
      ratioRow(`big hit: cached run + output(x), 80 MB (vs ${hit.faster})`, hit.paired, BIG_HIT_GOAL),
      ratioRow(`big miss: executing run storing 80 MB, warm store (vs ${miss.faster})`, miss.warm, BIG_MISS_GOAL),
      ratioRow(`big miss: first run in a new store storing 80 MB (vs ${miss.faster})`, miss.first, BIG_MISS_GOAL),
      ...gigabyte.rows,
    ];
    console.log(renderTable(rows));
    const throughput = (ms: number): string => `${formatMs(ms)} (${(data.byteLength / MB / (ms / 1000)).toFixed(0)} MB/s)`;
    console.log('\nspread over repetitions (min, median, max)');
    console.log(`  ${spread('big hit, stepcache', hit.paired.a, throughput)}`);
    console.log(`  ${spread(`big hit, ${hit.faster}`, hit.paired.b, throughput)}`);
    console.log(`  ${spread('big miss, stepcache, warm store', miss.warm.a, throughput)}`);
    console.log(`  ${spread('big miss, stepcache, new store', miss.first.a, throughput)}`);
    console.log(`  ${spread(`big miss, ${miss.faster}`, miss.warm.b, throughput)}`);
    console.log('\nnotes (medians)');
    for (const note of gigabyte.notes) console.log(`  ${note}`);
    const runPart = median(hit.runMs);
    console.log(`  big hit: of the stepcache time, runner.run ${formatMs(runPart)}, run.output('x') ${formatMs(median(hit.paired.a) - runPart)} (medians of the parts, approximately)`);
    console.log(`  content hash of 80 MB: XXH3-128 ${throughput(median(handOff.plainHashMs))}, HMAC-SHA256 with a secret ${throughput(median(handOff.keyedHashMs))}`);
    console.log(`  other processes kept ${others.toFixed(2)} of ${os.cpus().length} CPUs busy during the big hit and miss`);
    console.log(`benchmark took ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
};

const main = async (): Promise<void> => {
  const started = performance.now();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-bench-'));
  console.log(headline('stepcache benchmark'));
  console.log(`stores in ${root}\n`);
  try {
    const stepsDir = path.join(root, 'steps');
    const runner = createRunner({ dir: stepsDir, logger: silentLogger });
    let chain: CachedStepResult;
    let independent: CachedStepResult;
    try {
      console.log(`measuring the ${SHAPES.chain.label} ...`);
      chain = await measureCachedSteps(runner, stepsDir, 'chain');
      console.log(`measuring ${SHAPES.independent.label} ...`);
      independent = await measureCachedSteps(runner, stepsDir, 'independent');
    } finally {
      await runner.close();
    }

    const data = new Float64Array(BIG_LENGTH);
    for (let i = 0; i < data.length; i++) data[i] = Math.random();
    const bigStart = cpuTimes();
    console.log(`measuring a big hit (${(data.byteLength / MB).toFixed(0)} MB) ...`);
    const hit = await measureBigHit(root, data);
    console.log(`measuring a big miss (${(data.byteLength / MB).toFixed(0)} MB) ...\n`);
    const miss = await measureBigMiss(root, data);
    const handOff = await measureHandOffParts(data);
    const others = otherCpus(bigStart);
    console.log(`measuring a ${BIG_BYTES / 1e9} GB miss and hit, each in a fresh process, with peak memory ...\n`);
    const gigabyte = await measureBigArtifact();
    console.log('measuring the memory of the S3 store (256 MiB to and from s3rver) ...\n');
    const s3 = await measureS3Memory();
    if (!s3.get.verified) fail('the 256 MiB artifact loaded from the S3 server did not verify');
    console.log('measuring a cached run on a team store (PostgreSQL + s3rver) beside the embedded store ...\n');
    const team = await measureTeamStore(REPS);
    console.log(`measuring runs list and cache ls at ${RUN_COUNT} runs, run records, a 40,000-key run config ...\n`);
    const records = await measureRecords();
    console.log(`measuring whole processes running a fully cached ${SCRIPT_STEPS}-step script with the built package, next to a plain script ...\n`);
    const wholeProcess = await measureWholeProcess(REPS);
    console.log(`measuring first runs, cached re-runs and plans of ${CHAIN_LENGTHS.join(', ')}-step chains ...\n`);
    const chains = await measureChains();

    const rows: Row[] = [
      ...cachedRows(SHAPES.chain.label, chain),
      ...cachedRows(SHAPES.independent.label, independent),
      ratioRow(`big hit: cached run + output(x), 80 MB (vs ${hit.faster})`, hit.paired, BIG_HIT_GOAL),
      ratioRow(`big miss: executing run storing 80 MB, warm store (vs ${miss.faster})`, miss.warm, BIG_MISS_GOAL),
      ratioRow(`big miss: first run in a new store storing 80 MB (vs ${miss.faster})`, miss.first, BIG_MISS_GOAL),
      ...gigabyte.rows,
      memoryRow('S3 store: memory rise storing 256 MiB', s3.put.rises, s3),
      memoryRow('S3 store: memory rise loading 256 MiB', s3.get.rises, s3),
      teamStoreRow(team),
      ...records.rows,
      ...wholeProcess.rows,
      ...chainRows(chains),
    ];
    console.log(renderTable(rows));

    const throughput = (ms: number): string => `${formatMs(ms)} (${(data.byteLength / MB / (ms / 1000)).toFixed(0)} MB/s)`;
    console.log('\nspread over repetitions (min, median, max)');
    for (const [label, r] of [
      [SHAPES.chain.label, chain],
      [SHAPES.independent.label, independent],
    ] as const) {
      console.log(`  ${spread(`${label}, cached run per step, in process`, r.inProcess.a, formatMs)}`);
      console.log(`  ${spread(`${label}, cached run per step, fresh process`, r.child.a, formatMs)}`);
    }
    console.log(`  ${spread('big hit, stepcache', hit.paired.a, throughput)}`);
    console.log(`  ${spread(`big hit, ${hit.faster}`, hit.paired.b, throughput)}`);
    console.log(`  ${spread('big miss, stepcache, warm store', miss.warm.a, throughput)}`);
    console.log(`  ${spread('big miss, stepcache, new store', miss.first.a, throughput)}`);
    console.log(`  ${spread(`big miss, ${miss.faster}`, miss.warm.b, throughput)}`);
    console.log(`  ${spread('cached 20-step run, PostgreSQL + S3', team.paired.a, formatMs)}`);
    console.log(`  ${spread('cached 20-step run, embedded store', team.paired.b, formatMs)}`);

    console.log('\nnotes (medians)');
    for (const [label, r] of [
      [SHAPES.chain.label, chain],
      [SHAPES.independent.label, independent],
    ] as const) {
      const afterGc = r.afterGc.length > 0 ? `; right after a forced full GC ${formatMs(median(r.afterGc) * STEP_COUNT)}` : '';
      console.log(`  ${label}: whole cached run ${formatMs(median(r.inProcess.a) * STEP_COUNT)} in process${afterGc}; ${formatMs(median(r.child.a) * STEP_COUNT)} as the first run of a fresh process`);
      console.log(`  ${label}: every cached run adds a run record of ${(r.recordBytes / 1000).toFixed(0)} kB (as JSON) to the metadata store`);
    }
    console.log(`  S3 store, 256 MiB, parts of ${PART_SIZE / 2 ** 20} MiB x ${QUEUE_SIZE} in flight, memory beyond the artifact's own buffer (s3rver runs in its own process):`);
    console.log(`    storing: ${transfers(s3.bytes, s3.put.rises)}`);
    console.log(`    loading: ${transfers(s3.bytes, s3.get.rises)}`);
    console.log(`  team store: the first cached run of a new runner (new connections, nothing known of the bucket yet) takes ${formatMs(median(team.firstRunMs))}`);
    for (const note of [...gigabyte.notes, ...records.notes, ...wholeProcess.notes]) console.log(`  ${note}`);
    const runPart = median(hit.runMs);
    console.log(`  big hit: of the stepcache time, runner.run ${formatMs(runPart)}, run.output('x') ${formatMs(median(hit.paired.a) - runPart)} (medians of the parts, approximately)`);

    console.log(
      `  big output, alone: the snapshot a store that cannot store at once (S3) takes when the step returns (serializing 80 MB, a copy) ${formatMs(median(handOff.snapshotMs))}; the file store stores at once instead (no copy); content hash of 80 MB: XXH3-128 ${throughput(median(handOff.plainHashMs))}, HMAC-SHA256 with a secret ${throughput(median(handOff.keyedHashMs))}`,
    );
    const cpus = os.cpus().length;
    console.log(`  other processes kept ${chain.others.toFixed(2)} and ${independent.others.toFixed(2)} of ${cpus} CPUs busy during the cached-step measurements, ${others.toFixed(2)} during the big hit and miss`);
    if (Math.max(chain.others, independent.others, others) > BUSY_CPUS) {
      console.log(
        '\nnote: the machine was busy with other work, which skews these figures (most of all the big hit and miss, which hash on the main thread while the thread pool reads or writes and so need two free cores); re-run on an idle machine for stable figures.',
      );
    }

    const missed = rows.filter((r) => !r.pass);
    console.log(`\n${missed.length === 0 ? 'all goals met' : `${missed.length} of ${rows.length} goals missed: ${missed.map((r) => r.measure).join('; ')}`}`);
    console.log(`benchmark took ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
};

if (require.main === module) {
  (process.env['BENCH_ONLY'] === 'big' ? mainBig() : main()).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
