/**
 * Two machines, one team store: real child processes, each with its own working folder and its
 * own STEPCACHE_DIR, sharing a real PostgreSQL server and a real S3 server named only by
 * STEPCACHE_METADATA_URL and STEPCACHE_ARTIFACTS_URL. What one computed the other uses; racing
 * processes execute a key once; signed entries verify across machines and unsigned ones are
 * refused by a signed reader; a password never appears in what a failing run or CLI command prints.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { runCli } from '../src/cli/cli';
import { removeDir, tempDir } from './support/fixtures';
import { testPostgres, type TestPostgres } from './support/provision/postgres';
import { provideS3Server, type S3Server } from './support/provision/s3';

const root = path.resolve(__dirname, '..');
/** tsx by its file URL: each machine runs in a folder of its own, where `--import tsx` would not resolve. */
const TSX = pathToFileURL(path.join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const STEPS = ['load_rows', 'scale_rows', 'summarize_rows'];

let postgres: TestPostgres;
let s3: S3Server;
let work: string;
beforeAll(async () => {
  [postgres, s3] = await Promise.all([testPostgres(), provideS3Server()]);
  work = tempDir();
  // The CLI in this process finds S3 credentials where a person's would: in the environment.
  const credentials = s3.clientConfig.credentials as { accessKeyId: string; secretAccessKey: string } | undefined;
  if (credentials !== undefined) Object.assign(process.env, { AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey });
}, 180_000);
afterAll(async () => {
  await Promise.all([postgres?.dispose(), s3?.stop()]);
  if (work !== undefined) removeDir(work);
});

let stores = 0;
/** A team store of its own for each test: a fresh schema and a fresh prefix on the shared servers. */
const teamStore = (): { readonly metadataUrl: string; readonly artifactsUrl: string } => {
  const name = `team_${process.pid}_${++stores}`;
  const metadata = new URL(postgres.url);
  metadata.searchParams.set('schema', name);
  return {
    metadataUrl: metadata.toString(),
    artifactsUrl: `s3://${s3.bucket}/${name}?endpoint=${s3.endpoint}&region=us-east-1&forcePathStyle=true&checksums=when-required`,
  };
};

/** A machine: a working folder and a store directory of its own. */
const machine = (name: string): { readonly cwd: string; readonly dir: string } => {
  const cwd = path.join(work, `${name}-${++stores}`);
  fs.mkdirSync(cwd, { recursive: true });
  return { cwd, dir: path.join(cwd, '.stepcache') };
};

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly result?: { readonly statuses: Record<string, string>; readonly summary: unknown };
}

/** Runs test/support/team-run.ts as one machine of the team. */
const runOn = (
  where: { readonly cwd: string; readonly dir: string },
  team: { readonly metadataUrl: string; readonly artifactsUrl: string },
  log: string,
  extra: Readonly<Record<string, string>> = {},
): Promise<Outcome> =>
  new Promise((resolve) => {
    const credentials = s3.clientConfig.credentials as { accessKeyId: string; secretAccessKey: string } | undefined;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      STEPCACHE_DIR: where.dir,
      STEPCACHE_METADATA_URL: team.metadataUrl,
      STEPCACHE_ARTIFACTS_URL: team.artifactsUrl,
      ...(credentials === undefined ? {} : { AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey }),
      ...extra,
    };
    delete env['STEPCACHE_TEST_SECRET'];
    if (extra['STEPCACHE_TEST_SECRET'] !== undefined) env['STEPCACHE_TEST_SECRET'] = extra['STEPCACHE_TEST_SECRET'];
    const child = spawn(process.execPath, ['--import', TSX, path.join(root, 'test/support/team-run.ts'), log], { cwd: where.cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      let result: Outcome['result'];
      try {
        result = JSON.parse(line) as Outcome['result'];
      } catch {
        result = undefined;
      }
      resolve({ code, stdout, stderr, ...(result === undefined ? {} : { result }) });
    });
  });

const executionsIn = (log: string): string[] => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => l.split(' ')[0] ?? '') : []);
const allWith = (status: string): Record<string, string> => Object.fromEntries(STEPS.map((s) => [s, status]));

describe('two machines sharing a team store', () => {
  it('the second machine serves every step from what the first computed, with equal outputs', async () => {
    const team = teamStore();
    const log = path.join(work, `two-${stores}.log`);
    const first = await runOn(machine('alice'), team, log);
    expect(first.stderr).not.toMatch(/^(warning|error): /m);
    expect(first.code).toBe(0);
    expect(first.result?.statuses).toEqual(allWith('executed'));

    const bob = machine('bob');
    const second = await runOn(bob, team, log);
    expect(second.code).toBe(0);
    expect(second.stderr).not.toMatch(/^(warning|error): /m);
    expect(second.result?.statuses).toEqual(allWith('cached'));
    expect(second.result?.summary).toEqual(first.result?.summary);
    expect(executionsIn(log).sort()).toEqual([...STEPS].sort());
    // Nothing of the team's store lives in Bob's folder.
    expect(fs.existsSync(path.join(bob.dir, 'metadata.sqlite'))).toBe(false);
    expect(fs.existsSync(path.join(bob.dir, 'artifacts'))).toBe(false);
  }, 120_000);

  it('four processes racing for the same keys execute each step once', async () => {
    const team = teamStore();
    const log = path.join(work, `race-${stores}.log`);
    const outcomes = await Promise.all(['a', 'b', 'c', 'd'].map((name) => runOn(machine(name), team, log)));
    for (const o of outcomes) {
      expect(o.stderr).not.toMatch(/^(warning|error): /m);
      expect(o.code).toBe(0);
    }
    expect(executionsIn(log).sort()).toEqual([...STEPS].sort());
    expect(new Set(outcomes.map((o) => JSON.stringify(o.result?.summary))).size).toBe(1);
    for (const step of STEPS) expect(outcomes.filter((o) => o.result?.statuses[step] === 'executed')).toHaveLength(1);
  }, 180_000);

  it('entries signed with the team secret verify on the other machine; an unsigned entry is refused by a signed reader', async () => {
    const team = teamStore();
    const log = path.join(work, `signed-${stores}.log`);
    const signed = { STEPCACHE_TEST_SECRET: 'team-secret-1' };
    const writer = await runOn(machine('signer'), team, log, signed);
    expect(writer.result?.statuses).toEqual(allWith('executed'));
    const reader = await runOn(machine('verifier'), team, log, signed);
    expect(reader.stderr).not.toMatch(/^warning: /m);
    expect(reader.result?.statuses).toEqual(allWith('cached'));

    const unsignedTeam = teamStore();
    const unsignedLog = path.join(work, `unsigned-${stores}.log`);
    const unsignedWriter = await runOn(machine('outsider'), unsignedTeam, unsignedLog);
    expect(unsignedWriter.result?.statuses).toEqual(allWith('executed'));
    const signedReader = await runOn(machine('careful'), unsignedTeam, unsignedLog, signed);
    expect(signedReader.code).toBe(0);
    expect(signedReader.result?.statuses).toEqual(allWith('executed'));
    expect(signedReader.stderr).toMatch(/warning: Ignoring the cache entry of step load_rows .*it is not signed/);
    expect(signedReader.result?.summary).toEqual(unsignedWriter.result?.summary);
  }, 180_000);

  it('the CLI lists the runs and entries of the team store from another folder', async () => {
    const team = teamStore();
    const log = path.join(work, `cli-${stores}.log`);
    const ran = await runOn(machine('carol'), team, log);
    expect(ran.code).toBe(0);
    const elsewhere = machine('dave');
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, cwd: elsewhere.cwd, env: { STEPCACHE_METADATA_URL: team.metadataUrl } };
    expect(await runCli(['runs', 'list', '--json'], io)).toBe(0);
    const runs = JSON.parse(out.join('')) as Array<{ pipeline: string; steps: { executed: number } }>;
    expect(runs).toMatchObject([{ pipeline: 'team_store', steps: { executed: 3 } }]);
    out.length = 0;
    expect(await runCli(['cache', 'ls', '--json', '--metadata-url', team.metadataUrl, '--artifacts-url', team.artifactsUrl], io)).toBe(0);
    expect((JSON.parse(out.join('')) as Array<{ step: string }>).map((e) => e.step).sort()).toEqual([...STEPS].sort());
    expect(err.join('')).toBe('');
  }, 120_000);
});

describe('a password never shows', () => {
  const wrongPassword = 'wrong-Passw0rd-x7';
  const withWrongPassword = (): string => {
    const url = new URL(postgres.url);
    url.password = wrongPassword;
    return url.toString();
  };

  it('in anything a failing run prints', async () => {
    const team = { ...teamStore(), metadataUrl: withWrongPassword() };
    const failed = await runOn(machine('mallory'), team, path.join(work, 'never.log'));
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/The PostgreSQL metadata store at postgres:\/\/[^@\s]*:\*\*\*@/);
    expect(failed.stdout + failed.stderr).not.toContain(wrongPassword);
    expect(failed.stdout + failed.stderr).not.toContain(postgres.password);
  }, 60_000);

  it('in anything a failing CLI command prints, with --verbose too', async () => {
    for (const argv of [
      ['runs', 'list', '--verbose'],
      ['cache', 'ls'],
      ['runs', 'show', 'abc', '--verbose', '--metadata-url', withWrongPassword()],
    ]) {
      const printed: string[] = [];
      const sink = { write: (s: string) => printed.push(s) };
      const code = await runCli(argv, { stdout: sink, stderr: sink, cwd: work, env: { STEPCACHE_METADATA_URL: withWrongPassword() } });
      expect(code).toBe(1);
      expect(printed.join('')).toContain('could not');
      expect(printed.join('')).not.toContain(wrongPassword);
    }
    const printed: string[] = [];
    const sink = { write: (s: string) => printed.push(s) };
    expect(await runCli(['runs', 'list'], { stdout: sink, stderr: sink, cwd: work, env: { STEPCACHE_METADATA_URL: `mysql://ann:${wrongPassword}@db/ml` } })).toBe(2);
    expect(printed.join('')).toContain('Invalid STEPCACHE_METADATA_URL');
    expect(printed.join('')).not.toContain(wrongPassword);
  }, 60_000);
});
