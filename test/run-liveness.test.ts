/**
 * Runs whose process is gone read as interrupted: the rule (pid dead on this host, heartbeat
 * stale elsewhere), a real child process killed with SIGKILL in the middle of its run, and the
 * heartbeat of a long run, and the start record a run writes only once it changes the store or
 * lasts.
 */
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { createRunner, pipeline, silentLogger, step } from '../src';
import { runCli } from '../src/cli/cli';
import { runningRecords } from '../src/runner/run';
import { createSqliteMetadataStore, type MetadataStore } from '../src/store/metadata-store';
import type { RunRecord } from '../src/store/records';
import { ownerGone, withLiveStatus, type OwnerProbe } from '../src/store/run-liveness';
import { removeDir, tempDir } from './support/fixtures';

const ROOT = path.join(__dirname, '..');
const MINUTE = 60_000;
const probe = (alive: readonly number[], now = Date.parse('2026-11-30T12:00:00.000Z')): OwnerProbe => ({ host: 'here', isAlive: (pid) => alive.includes(pid), now: () => now });
const running = { status: 'running' as const, owner: { pid: 42, host: 'here' }, heartbeatAt: '2026-11-30T11:59:00.000Z', heartbeatEveryMs: 30_000 };

describe('ownerGone', () => {
  it('is true for a running run whose pid is dead on this host, whatever its heartbeat', () => {
    expect(ownerGone(running, probe([]))).toBe(true);
    expect(ownerGone(running, probe([42]))).toBe(false);
  });

  it('on another host, is true once the heartbeat is three beats old and a minute', () => {
    const elsewhere = { ...running, owner: { pid: 42, host: 'there' } };
    const at = (ms: number) => probe([], Date.parse('2026-11-30T11:59:00.000Z') + ms);
    expect(ownerGone(elsewhere, at(MINUTE + 1))).toBe(false);
    expect(ownerGone(elsewhere, at(90_001))).toBe(true);
    expect(ownerGone({ ...elsewhere, heartbeatEveryMs: 1_000 }, at(MINUTE - 1))).toBe(false);
    expect(ownerGone({ ...elsewhere, heartbeatEveryMs: 1_000 }, at(MINUTE + 1))).toBe(true);
  });

  it('never takes a finished run, or one recorded without an owner, for gone', () => {
    expect(ownerGone({ ...running, status: 'completed' }, probe([]))).toBe(false);
    expect(ownerGone({ status: 'running' }, probe([]))).toBe(false);
    expect(withLiveStatus(running, probe([])).status).toBe('interrupted');
    expect(withLiveStatus(running, probe([42]))).toBe(running);
  });
});

describe('a run whose process is killed', () => {
  it('reads as interrupted in listings, in its record and in the command line', async () => {
    const dir = tempDir('stepcache-killed-');
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'support', 'hanging-run.ts'), dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      const ended = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
      await new Promise<void>((resolve, reject) => {
        readline.createInterface({ input: child.stdout }).on('line', (line) => line === 'step started' && resolve());
        child.on('close', () => reject(new Error('the run ended before its step started')));
      });
      const metadata = createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'));
      // The start record is written while the step runs: wait for it while the owner lives.
      for (let summaries = await metadata.listRunSummaries(); summaries.length === 0; summaries = await metadata.listRunSummaries()) await new Promise((r) => setTimeout(r, 20));
      expect((await metadata.listRunSummaries()).map((r) => r.status)).toEqual(['running']);
      child.kill('SIGKILL');
      expect(await ended).toBe('SIGKILL');

      const [summary] = await metadata.listRunSummaries();
      expect(summary).toMatchObject({ pipeline: 'hanging_pipeline', status: 'interrupted', owner: { pid: child.pid, host: os.hostname() } });
      expect((await metadata.getRun(summary?.id as string))?.status).toBe('interrupted');
      expect((await metadata.listRuns({ status: 'interrupted' })).map((r) => r.id)).toEqual([summary?.id]);
      await metadata.close();

      let stdout = '';
      const code = await runCli(['runs', 'list', '--dir', dir], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: () => true }, env: {} });
      expect(code).toBe(0);
      expect(stdout).toMatch(/hanging_pipeline\s+interrupted\s/);
      let shown = '';
      await runCli(['runs', 'show', 'latest', '--dir', dir], { stdout: { write: (s: string) => (shown += s) }, stderr: { write: () => true }, env: {} });
      expect(shown).toContain(`: interrupted\n`);
      expect(shown).toContain(`No steps recorded: its process (pid ${child.pid} on ${os.hostname()}) stopped before the run ended.`);
    } finally {
      removeDir(dir);
    }
  });
});

describe('the heartbeat of a run', () => {
  it('rewrites the running record while a long step runs, and the final record ends it', async () => {
    const dir = tempDir('stepcache-heartbeat-');
    const runner = createRunner({ dir, logger: silentLogger, heartbeatEveryMs: 10 });
    const watcher = createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'));
    try {
      const beats = new Set<string>();
      // The step lasts until the watcher has seen three different heartbeats of the running record.
      const long = step(async function wait_for_heartbeats() {
        while (beats.size < 3) {
          const [run] = await watcher.listRuns({ status: 'running' });
          if (run?.heartbeatAt !== undefined) beats.add(run.heartbeatAt);
          await new Promise((r) => setTimeout(r, 5));
        }
        return beats.size;
      });
      const run = await runner.run(pipeline('heartbeat_pipeline', (p) => ({ n: p.call(long) })));
      expect(beats.size).toBe(3);
      expect(run.status).toBe('completed');
      expect((await watcher.getRun(run.id))?.status).toBe('completed');
      expect(run.owner).toEqual({ pid: process.pid, host: os.hostname() });
    } finally {
      await watcher.close();
      await runner.close();
      removeDir(dir);
    }
  });
});

/** The real SQLite store of `dir`, noting the status of every run record written to it. */
const notingRunWrites = (dir: string): { readonly store: MetadataStore; readonly written: Array<RunRecord['status']> } => {
  const real = createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'));
  const written: Array<RunRecord['status']> = [];
  return { store: { ...real, putRun: (run: RunRecord) => (written.push(run.status), real.putRun(run)) }, written };
};

describe('the start record of a run', () => {
  it('is not written by a run that only serves steps from the cache: its final record is its one write', async () => {
    const dir = tempDir('stepcache-start-record-');
    const { store, written } = notingRunWrites(dir);
    const runner = createRunner({ dir, logger: silentLogger, metadata: store });
    try {
      const double = step(function double_it({ x }: { x: number }) {
        return 2 * x;
      });
      const p = pipeline('start_record_pipeline', (p) => ({ y: p.call(double, { x: 21 }) }));
      const first = await runner.run(p);
      expect(first.steps['double_it']?.status).toBe('executed');
      expect(written).toEqual(['running', 'completed']);
      written.length = 0;
      const cached = await runner.run(p);
      expect(cached.steps['double_it']?.status).toBe('cached');
      expect(written).toEqual(['completed']);
      expect(await cached.output('y')).toBe(42);
      expect((await runner.getRun(cached.id))?.status).toBe('completed');
    } finally {
      await runner.close();
      removeDir(dir);
    }
  });

  it('is written as soon as a step starts executing, and lands before the final record', async () => {
    const dir = tempDir('stepcache-start-record-');
    const { store, written } = notingRunWrites(dir);
    const runner = createRunner({ dir, logger: silentLogger, metadata: store });
    try {
      const seen: Array<string | undefined> = [];
      const look = step(async function look_at_runs() {
        // The start record is written when this step starts: wait for it to land.
        for (let runs = await store.listRuns({ status: 'running' }); runs.length === 0; runs = await store.listRuns({ status: 'running' })) await new Promise((r) => setTimeout(r, 5));
        seen.push(...(await store.listRuns({ status: 'running' })).map((r) => r.pipeline));
        return seen.length;
      });
      const run = await runner.run(pipeline('executing_pipeline', (p) => ({ n: p.call(look) })));
      expect(seen).toEqual(['executing_pipeline']);
      expect(written).toEqual(['running', 'completed']);
      expect((await store.getRun(run.id))?.status).toBe('completed');
    } finally {
      await runner.close();
      removeDir(dir);
    }
  });

  it('is written after a while by a run that executes nothing, then beats; never after the run ends', async () => {
    const written: number[] = [];
    const running = runningRecords(async () => void written.push(written.length), 5);
    while (written.length < 3) await new Promise((r) => setTimeout(r, 5));
    await running.end();
    const ended = written.length;
    running.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(written.length).toBe(ended);
  });

  it('is written once, however often it is started; a run that ends first writes none', async () => {
    const writes: string[] = [];
    const started = runningRecords(async () => void writes.push('start'), 60_000);
    started.start();
    started.start();
    await started.end();
    expect(writes).toEqual(['start']);
    const unstarted = runningRecords(async () => void writes.push('late'), 60_000);
    await unstarted.end();
    unstarted.start();
    expect(writes).toEqual(['start']);
  });

  it('fails the run when the start record fails, but not when a heartbeat does', async () => {
    const failing = runningRecords(() => Promise.reject(new Error('the store is down')), 60_000);
    failing.start();
    await expect(failing.end()).rejects.toThrow('the store is down');
    let calls = 0;
    const beating = runningRecords(async () => {
      calls += 1;
      if (calls > 1) throw new Error('a heartbeat failed');
    }, 5);
    beating.start();
    while (calls < 3) await new Promise((r) => setTimeout(r, 5));
    await expect(beating.end()).resolves.toBeUndefined();
  });
});
