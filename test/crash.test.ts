/**
 * Crash consistency, for real: a child process runs a pipeline with large outputs on one shared
 * store and is killed (SIGKILL) at random moments, many times. After every kill the store must be
 * consistent: every cache entry's artifacts present, whole and with the right content, and no
 * partial file under an artifact's final name. Afterwards a run completes, re-executes only the
 * steps that were not committed, and produces the same outputs as an uncached run.
 *
 * CRASH_KILLS sets the number of kills (default 24; more, up to twice as many, until 60% of them landed mid-run), CRASH_SEED the seed of the kill schedule;
 * CRASH_DEBUG=1 prints a line per kill to stderr.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { createRunner, silentLogger, type RunRecord } from '../src';
import { checkStore, type VerifiedFiles } from './support/crash-check';
import { CRASH_OUTPUTS, CRASH_PIPELINE, CRASH_STEPS, prng, type CrashPipelineResult } from './support/crash-pipeline';
import { removeDir, tempDir } from './support/fixtures';

const KILLS = Number(process.env['CRASH_KILLS'] ?? 24);
const SCHEDULE_SEED = Number(process.env['CRASH_SEED'] ?? 20_240_611);
const ROOT = path.join(__dirname, '..');
const SCRIPT = path.join(__dirname, 'support', 'crash-pipeline.ts');
/** How often a run after a mid-run kill resumes the same seed (the rest start a new one, which executes every step). */
const RESUME = 0.25;
/** How many kills between two measurements of an uncached run. */
const RECALIBRATE = 8;
/** Kills that must land mid-run (the others land after completion), and the most kills made to get them. */
const MIN_MID_RUN = Math.ceil(0.6 * KILLS);
const MAX_KILLS = 2 * KILLS;
if (!Number.isInteger(KILLS) || KILLS < 1) throw new Error(`CRASH_KILLS must be a whole number of at least 1, got ${process.env['CRASH_KILLS'] ?? ''}`);


const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Where a run was when it was killed, from the last lines it printed. */
type Phase = 'open' | 'step' | 'write' | 'commit' | 'record' | 'outputs' | 'after';

interface Child {
  /** Resolves when the child printed `started` (its modules are loaded); rejects if it ends first. */
  readonly started: Promise<void>;
  /** Lets the run begin (the child waits for it after `started`). */
  readonly go: () => void;
  /** Resolves when the child has ended and its output has been read. */
  readonly ended: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>;
  /** Milliseconds from `go` to `done`, once done. */
  readonly runMs: () => number | undefined;
  readonly result: () => CrashPipelineResult | undefined;
  /** Where the run is, from the last lines it printed. */
  readonly phase: () => Phase;
  readonly stderr: () => string;
  readonly kill: () => void;
}

/** Starts the pipeline in a child process: `node --import tsx`, one process, so the kill reaches the writer. */
const startChild = (dir: string, seed: number): Child => {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, dir, String(seed), '--wait'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => undefined); // a child that died early: its end is reported by `ended`
  let wentAt: number | undefined;
  let runMs: number | undefined;
  let result: CrashPipelineResult | undefined;
  let stderr = '';
  let lastLine = '';
  let stepsStarted = 0;
  let stepsSettled = 0;
  let writing = 0;
  let runFinished = false;
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => void (stderr += chunk));
  let onStarted: () => void = () => undefined;
  let hasStarted = false;
  const started = new Promise<void>((resolve) => (onStarted = resolve));
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    lastLine = line;
    if (line === 'started') {
      hasStarted = true;
      onStarted();
    } else if (line.startsWith('done ')) {
      runMs = performance.now() - (wentAt ?? Number.NaN);
      result = JSON.parse(line.slice('done '.length)) as CrashPipelineResult;
    } else if (line.startsWith('trace put ')) writing++;
    else if (line.startsWith('trace stored ')) writing--;
    else if (/^log Step \S+ has started\.$/.test(line)) stepsStarted++;
    else if (/^log (Step \S+ has finished in|Using cached version of)/.test(line)) stepsSettled++;
    else if (/^log Pipeline run \S+ has finished/.test(line)) runFinished = true;
  });
  // 'close', not 'exit': it comes after the child's output has been read to the end.
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return {
    started: Promise.race([
      started,
      ended.then(() => {
        if (!hasStarted) throw new Error(`the pipeline child ended before it started: ${stderr}`);
      }),
    ]),
    go: () => {
      wentAt = performance.now();
      child.stdin.end('go\n');
    },
    ended,
    runMs: () => runMs,
    result: () => result,
    phase: () =>
      result !== undefined ? 'after'
      : runFinished ? 'outputs'
      : stepsSettled === CRASH_STEPS.length ? 'record'
      : writing > 0 ? 'write'
      : lastLine.startsWith('trace stored ') ? 'commit'
      : stepsStarted > 0 ? 'step'
      : 'open',
    stderr: () => stderr,
    kill: () => void child.kill('SIGKILL'),
  };
};

/** Runs the pipeline to completion in a child; fails unless it exits with 0 and prints its result. */
const runToCompletion = async (dir: string, seed: number): Promise<{ result: CrashPipelineResult; runMs: number }> => {
  const child = startChild(dir, seed);
  await child.started;
  child.go();
  const { code, signal } = await child.ended;
  const result = child.result();
  const runMs = child.runMs();
  if (code !== 0 || result === undefined || runMs === undefined) throw new Error(`the pipeline run (seed ${seed}) exited with ${code ?? signal}: ${child.stderr()}`);
  return { result, runMs };
};

const recordsOf = async (dir: string): Promise<RunRecord[]> => {
  const runner = createRunner({ dir, logger: silentLogger });
  try {
    return await runner.listRuns();
  } finally {
    await runner.close();
  }
};

const keysOf = (run: RunRecord): Record<string, string | undefined> => Object.fromEntries(CRASH_STEPS.map((s) => [s, run.steps[s]?.key]));

let dirs: string[] = [];
afterEach(() => {
  dirs.forEach(removeDir);
  dirs = [];
});
const newDir = (): string => {
  const dir = tempDir('stepcache-crash-');
  dirs.push(dir);
  return dir;
};

describe('the consistency check', () => {
  it('finds missing, truncated and foreign artifact files, half-written JSON and an unreadable database', async () => {
    const dir = newDir();
    await runToCompletion(dir, 5);
    expect((await checkStore(dir)).violations).toEqual([]);
    const [run] = await recordsOf(dir);
    const outputs = run?.steps['source']?.outputs ?? {};
    const signal = outputs['signal'];
    const labels = outputs['labels'];
    const summary = run?.steps['summarize']?.outputs?.['output'];
    if (signal === undefined || labels === undefined || summary === undefined) throw new Error('the run recorded no outputs');
    const fileOf = (id: string): string => path.join(dir, 'artifacts', id.slice(0, 2), id);
    fs.truncateSync(fileOf(signal.id), signal.size - 1);
    fs.rmSync(fileOf(labels.id));
    const bytes = fs.readFileSync(fileOf(summary.id));
    bytes[100] = (bytes[100] ?? 0) ^ 1;
    fs.writeFileSync(fileOf(summary.id), bytes);
    fs.writeFileSync(path.join(dir, 'artifacts', summary.id.slice(0, 2), `${summary.id.slice(0, 2)}${'0'.repeat(30)}`), 'partial');
    fs.writeFileSync(path.join(dir, 'artifacts', signal.id.slice(0, 2), 'x.part'), 'partial');
    fs.writeFileSync(path.join(dir, 'fingerprints.json'), '{"format":1,"entr');

    const found = (await checkStore(dir)).violations.join('\n');
    expect(found).toContain(`output signal: ${fileOf(signal.id)} has ${signal.size - 1} bytes, expected ${signal.size}`);
    expect(found).toContain(`output labels: ${fileOf(labels.id)} is missing`);
    expect(found).toContain(`output output: ArtifactCorrupted: ${fileOf(summary.id)} content hash is`);
    expect(found).toContain(`artifact file ${path.join(dir, 'artifacts', summary.id.slice(0, 2), `${summary.id.slice(0, 2)}${'0'.repeat(30)}`)} does not hash to its name`);
    expect(found).toContain(`${path.join(dir, 'artifacts', signal.id.slice(0, 2), 'x.part')} is not named as an artifact`);
    expect(found).toContain('fingerprints.json is not whole JSON');

    const database = path.join(dir, 'metadata.sqlite');
    for (const f of [database, `${database}-wal`, `${database}-shm`]) fs.rmSync(f, { force: true });
    fs.writeFileSync(database, Buffer.alloc(4096, 7));
    expect((await checkStore(dir)).violations.join('\n')).toMatch(/metadata\.sqlite cannot be (opened|read)/);
  });
});

describe('a run killed at any moment', () => {
  it(
    'leaves the store consistent, and the next run completes re-executing only what was not committed',
    async () => {
      const random = prng(SCHEDULE_SEED);

      // Calibrate: the first run in a store computes code fingerprints (loading the TypeScript
      // compiler); once a run has completed they are kept on disk, and an uncached run takes what
      // the later ones here take. Kills are drawn within 1.2 times that (the median of the last
      // three), counted from the start of the run. It is measured again every few kills, as the
      // machine's load changes.
      const calibration = newDir();
      let calibrationSeed = 1;
      const uncachedRun = async (): Promise<number> => {
        const run = await runToCompletion(calibration, calibrationSeed++);
        expect(Object.values(run.result.statuses)).toEqual(CRASH_STEPS.map(() => 'executed'));
        return run.runMs;
      };
      const coldMs = await uncachedRun();
      const recent = [await uncachedRun(), await uncachedRun(), await uncachedRun()];
      const typicalMs = (): number => [...recent].sort((a, b) => a - b)[Math.floor(recent.length / 2)] as number;
      const typicals: number[] = [];

      // The shared store has been used before: one completed run, so fingerprints are kept and
      // the killed runs spend their time on the pipeline, not on loading the compiler.
      const shared = newDir();
      await runToCompletion(shared, 100);
      const violations: string[] = [];
      const phases: Record<Phase, number> = { open: 0, step: 0, write: 0, commit: 0, record: 0, outputs: 0, after: 0 };
      const verified: VerifiedFiles = new Map();
      let midRun = 0;
      let freshSeed = 100;
      let seed = freshSeed;
      let resumeSeed: number | undefined; // the seed of the last run killed mid-run
      let resumed = 0;
      const killedSeeds: number[] = [];
      let previous = 'the warm-up run';
      // Kills go on past KILLS (up to twice as many) until enough landed mid-run: on a loaded
      // machine a run's length varies more than the calibration foresees.
      let kills = 0;
      for (let i = 0; i < MAX_KILLS && (i < KILLS || midRun < MIN_MID_RUN); i++) {
        kills++;
        if (resumeSeed !== undefined && random() < RESUME) {
          seed = resumeSeed;
          resumed++;
        } else seed = ++freshSeed;
        if (i > 0 && i % RECALIBRATE === 0) {
          recent.push(await uncachedRun());
          recent.splice(0, recent.length - 3);
        }
        // The next child loads its modules while the store left by the last kill is checked; it
        // touches the store only after `go`.
        const child = startChild(shared, seed);
        const check = await checkStore(shared, verified);
        violations.push(...check.violations.map((v) => `after ${previous}: ${v}`));
        await child.started;
        typicals.push(typicalMs());
        const delayMs = random() * 1.2 * typicalMs();
        child.go();
        const early = await Promise.race([sleep(delayMs).then(() => false), child.ended.then(() => true)]);
        const phase = child.phase();
        const wasMidRun = child.result() === undefined;
        if (!early) child.kill();
        const { code, signal } = await child.ended;
        previous = `kill ${i + 1} (seed ${seed}, ${delayMs.toFixed(0)} ms after the start, ${wasMidRun ? `phase ${phase}` : 'after completion'})`;
        if (signal !== 'SIGKILL' && code !== 0) violations.push(`${previous}: the child failed on its own with ${code ?? signal}: ${child.stderr()}`);
        if (process.env['CRASH_DEBUG']) process.stderr.write(`${previous}${wasMidRun ? '' : `, run took ${child.runMs()?.toFixed(0)} ms`}\n`);
        phases[phase]++;
        if (wasMidRun) {
          midRun++;
          resumeSeed = seed;
          killedSeeds.push(seed);
        }
      }
      const before = await checkStore(shared, verified);
      violations.push(...before.violations.map((v) => `after ${previous}: ${v}`));
      const phaseText = (Object.keys(phases) as Phase[]).filter((p) => p !== 'after').map((p) => `${p} ${phases[p]}`).join(', ');
      const killSummary =
        `crash test: ${kills} kills, ${midRun} mid-run (${phaseText}), ${kills - midRun} after completion, ${violations.length} violations; ${resumed} resumed runs; ` +
        `uncached run ${Math.min(...typicals).toFixed(0)}-${Math.max(...typicals).toFixed(0)} ms (first in a store ${coldMs.toFixed(0)} ms); schedule seed ${SCHEDULE_SEED}`;
      if (violations.length > 0) console.log(killSummary);
      expect(violations).toEqual([]);

      // The final run resumes a seed killed mid-run: the last one with some steps committed and
      // some not, if any (its runs' records say which seed an entry's run had).
      const seedOfRun = new Map((await recordsOf(shared)).map((r) => [r.id, r.parameters['seed']]));
      const committed = (s: number): number => new Set(before.intact.filter((e) => seedOfRun.get(e.runId) === s).map((e) => e.step)).size;
      const partial = killedSeeds.filter((s) => committed(s) > 0 && committed(s) < CRASH_STEPS.length);
      const finalSeed = partial[partial.length - 1] ?? resumeSeed ?? seed;
      const resumedRun = await runToCompletion(shared, finalSeed);
      const cleanDir = newDir();
      const clean = await runToCompletion(cleanDir, finalSeed);
      expect(resumedRun.result.digests).toEqual(clean.result.digests);
      expect(Object.keys(resumedRun.result.digests)).toEqual([...CRASH_OUTPUTS]);

      // Re-executed only what was not committed: a step whose entry was there before is cached, the others executed.
      const [last] = await recordsOf(shared);
      if (last === undefined) throw new Error('the store has no run records');
      expect(last.id).toBe(resumedRun.result.runId);
      expect(last.pipeline).toBe(CRASH_PIPELINE);
      expect(last.status).toBe('completed');
      const [cleanRecord] = await recordsOf(cleanDir);
      if (cleanRecord === undefined) throw new Error('the uncached run left no record');
      expect(keysOf(last)).toEqual(keysOf(cleanRecord));
      const statuses = Object.fromEntries(CRASH_STEPS.map((s) => [s, last.steps[s]?.status]));
      const expected = Object.fromEntries(CRASH_STEPS.map((s) => [s, before.entryKeys.has(last.steps[s]?.key ?? '') ? 'cached' : 'executed']));
      expect(statuses).toEqual(expected);
      const after = await checkStore(shared, verified);
      expect(after.violations).toEqual([]);

      const cachedInFinal = Object.values(statuses).filter((s) => s === 'cached').length;
      console.log(
        `${killSummary}; final run (seed ${finalSeed}): ${cachedInFinal} cached, ${CRASH_STEPS.length - cachedInFinal} executed; ` +
          `store: ${after.entries} entries, ${after.artifacts} artifact files, ${after.tmpFiles} partial temp files, ${after.strayParts} stray fingerprint temp files`,
      );
      expect(midRun).toBeGreaterThanOrEqual(MIN_MID_RUN);
    },
    60_000 + MAX_KILLS * 3_000,
  );
});
