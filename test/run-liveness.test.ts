/**
 * Runs whose process is gone read as interrupted: the rule (pid dead on this host, heartbeat
 * stale elsewhere), a real child process killed with SIGKILL in the middle of its run, and the
 * heartbeat of a long run.
 */
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { createRunner, pipeline, silentLogger, step } from '../src';
import { runCli } from '../src/cli/cli';
import { createSqliteMetadataStore } from '../src/store/metadata-store';
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
