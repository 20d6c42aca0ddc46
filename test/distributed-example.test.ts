/**
 * The README's "Run on many machines" section, followed literally: its shell block is read from
 * README.md and each line is run with bash, in order, but for the servers, which come from
 * test/support/provision (a real Redis and a real PostgreSQL), their URLs replacing those the
 * README exports. Lines ending in `&` are the workers, kept running; the others are the client
 * runs, whose JSON summaries must say what the README's comments say: the first run enqueues
 * every step and the workers execute them, the second enqueues nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { removeDir, tempDir } from './support/fixtures';
import { REPOSITORY } from './support/provision/core';
import { testPostgres, type TestPostgres } from './support/provision/postgres';
import { provideRedisServer, type RedisServer } from './support/provision/redis';

jest.setTimeout(300_000);

interface Summary {
  readonly status: string;
  readonly total: number;
  readonly executed: number;
  readonly cached: number;
  readonly enqueued: number;
  readonly workers: Record<string, string>;
}

/** The lines of the first shell block of a README section. */
const sectionCommands = (readme: string, heading: string): string[] => {
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no section ${heading}`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(start));
  if (block === null) throw new Error(`README section ${heading} has no sh block`);
  return (block[1] as string).split('\n').filter((l) => l.trim() !== '');
};

/** What a README comment says a run prints: the numbers it shows, by name (`"enqueued":0`). */
const promised = (line: string): Record<string, number> =>
  Object.fromEntries([...(line.split('#')[1] ?? '').matchAll(/"(\w+)":(\d+)/g)].map((m) => [m[1] as string, Number(m[2])]));

let redis: RedisServer;
let postgres: TestPostgres;
let dir: string;
const background: ChildProcess[] = [];
beforeAll(async () => {
  [redis, postgres] = await Promise.all([provideRedisServer(), testPostgres()]);
  dir = tempDir('stepcache-example-');
}, 240_000);
afterAll(async () => {
  for (const child of background) if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  await Promise.all([redis?.dispose(), postgres?.dispose()]);
  if (dir !== undefined) removeDir(dir);
});

describe('README: Run on many machines', () => {
  it('two workers, two client runs: the first executes every step on the workers, the second enqueues nothing', async () => {
    const commands = sectionCommands(fs.readFileSync(path.join(REPOSITORY, 'README.md'), 'utf8'), 'Run on many machines');
    // The servers are the test's own: their URLs replace the README's.
    const ours: Record<string, string> = {
      STEPCACHE_QUEUE_URL: redis.url,
      STEPCACHE_METADATA_URL: postgres.url,
      STEPCACHE_ARTIFACTS_URL: pathToFileURL(path.join(dir, 'team-artifacts')).href,
    };
    const env: Record<string, string | undefined> = { ...process.env };
    const exported: string[] = [];
    const summaries: Array<{ readonly line: string; readonly summary: Summary }> = [];
    let processes = 0;
    for (const line of commands) {
      if (/^redis-server /.test(line)) continue; // started above
      const exporting = /^export (\w+)=/.exec(line);
      if (exporting !== null) {
        const name = exporting[1] as string;
        expect(Object.keys(ours)).toContain(name);
        env[name] = ours[name];
        exported.push(name);
        continue;
      }
      // Each process keeps what is local (its fingerprint cache) in a folder of its own, not in the repository.
      const own = { ...env, STEPCACHE_DIR: path.join(dir, `local-${String(++processes)}`) };
      if (line.trimEnd().endsWith('&')) {
        const child = spawn('bash', ['-c', `exec ${line.trimEnd().replace(/&$/, '')}`], { cwd: REPOSITORY, env: own, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        background.push(child);
        let output = '';
        child.stdout?.on('data', (c: Buffer) => void (output += c.toString('utf8')));
        child.stderr?.on('data', (c: Buffer) => void (output += c.toString('utf8')));
        for (let waited = 0; !/is taking jobs/.test(output); waited += 100) {
          if (child.exitCode !== null || waited > 120_000) throw new Error(`${line}: the worker did not start: ${output}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        continue;
      }
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn('bash', ['-c', line], { cwd: REPOSITORY, env: own, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (c: Buffer) => void (out += c.toString('utf8')));
        child.stderr.on('data', (c: Buffer) => void (err += c.toString('utf8')));
        child.once('exit', (exit) => resolve({ code: exit, stdout: out, stderr: err }));
      });
      expect({ line, code, stderr }).toEqual({ line, code: 0, stderr: expect.any(String) as string });
      const last = stdout.trim().split('\n').at(-1) ?? '';
      summaries.push({ line, summary: JSON.parse(last) as Summary });
    }
    expect(exported.sort()).toEqual(Object.keys(ours).sort());
    expect(background).toHaveLength(2);
    expect(summaries).toHaveLength(2);
    const [first, second] = summaries.map((s) => s.summary) as [Summary, Summary];

    // what the README's comments promise
    for (const { line, summary } of summaries) {
      const numbers = promised(line);
      expect(Object.keys(numbers).sort()).toEqual(['cached', 'enqueued', 'executed']);
      expect({ executed: summary.executed, cached: summary.cached, enqueued: summary.enqueued }).toEqual(numbers);
      expect(summary.status).toBe('completed');
    }
    // the first run: every step went to the queue and was executed by a worker
    expect(first.enqueued).toBe(6);
    expect(Object.keys(first.workers).sort()).toEqual(['combine', 'load_rows', 'shard_0', 'shard_1', 'shard_2', 'shard_3']);
    // the second: nothing enqueued, same total
    expect(second.enqueued).toBe(0);
    expect(second.workers).toEqual({});
    expect(second.total).toBe(first.total);
  });
});
