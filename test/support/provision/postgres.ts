/**
 * A real PostgreSQL server for the tests, provisioned like every outside tool (see `core.ts`):
 *
 * - pointed at: `STEPCACHE_TEST_POSTGRES_URL` names a running server (postgres://user:password@host:port/db);
 * - found: Debian's server binaries (`/usr/lib/postgresql/<version>/bin`, or `$STEPCACHE_POSTGRES_BIN`);
 * - installed: `apt('postgresql')` as root, under the core's install lock.
 *
 * With binaries, a throwaway cluster is created in a temporary folder and started with `pg_ctl` on
 * 127.0.0.1 on a free port (`onFreePort` of `server.ts`), with a password (so tests can check that
 * messages never show it). `pg_ctl` (rather than a child process of ours) lets a test stop the
 * server and start it again on the same data folder. PostgreSQL refuses to run as root: when the
 * tests run as root, the cluster is created and run by the unprivileged `postgres` user
 * (`runuser -u postgres`), which owns the temporary folder.
 *
 * @example
 * let server: TestPostgres;
 * beforeAll(async () => (server = await testPostgres()), 120_000);
 * afterAll(() => server.dispose());
 *
 * @packageDocumentation
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { apt, currentHost, provide, type Tool } from './core';
import { onFreePort } from './server';

export { waitUntil } from './server';

// utils

/** Runs a program to completion; rejects with its output when it fails. */
const run = (file: string, args: readonly string[]): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(file, args, { env: process.env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${[file, ...args].join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

// the tool

/** A server the variable points at, or the folder of the server binaries that start one. */
export type PostgresFound = { readonly _tag: 'Running'; readonly url: string } | { readonly _tag: 'Binaries'; readonly bin: string };

const findBinaries = (env: NodeJS.ProcessEnv): string | undefined => {
  const fromEnv = env['STEPCACHE_POSTGRES_BIN'];
  if (fromEnv !== undefined && fs.existsSync(path.join(fromEnv, 'initdb'))) return fromEnv;
  const base = '/usr/lib/postgresql';
  if (!fs.existsSync(base)) return undefined;
  const versions = fs
    .readdirSync(base)
    .filter((v) => fs.existsSync(path.join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : path.join(base, versions[0], 'bin');
};

/**
 * PostgreSQL: the server `STEPCACHE_TEST_POSTGRES_URL` names, or Debian's server binaries.
 *
 * @example
 * const found = await provide(postgresTool); // { _tag: 'Binaries', bin: '/usr/lib/postgresql/15/bin' }
 */
export const postgresTool: Tool<PostgresFound> = {
  name: 'PostgreSQL (server binaries initdb, pg_ctl)',
  neededBy: 'the PostgreSQL tests (test/postgres-*.test.ts, test/team-store.test.ts)',
  variable: 'STEPCACHE_TEST_POSTGRES_URL',
  fromVariable: (value) => (/^postgres(ql)?:\/\/[^/]+/.test(value) ? { _tag: 'Running', url: value } : undefined),
  find: (env) => {
    const bin = findBinaries(env);
    return bin === undefined ? undefined : { _tag: 'Binaries', bin };
  },
  recipe: apt('postgresql'),
};

/**
 * The folder of PostgreSQL's server binaries (initdb, pg_ctl, postgres), found or installed,
 * whether or not `STEPCACHE_TEST_POSTGRES_URL` is set (a test that stops its server needs its own).
 *
 * @example
 * const bin = await postgresBinaries();
 */
export const postgresBinaries = async (): Promise<string> => {
  const host = currentHost();
  const found = await provide(postgresTool, { ...host, env: { ...host.env, [postgresTool.variable]: '' } });
  if (found._tag === 'Binaries') return found.bin;
  throw new Error('unreachable: the variable was cleared');
};

// the server

/** A PostgreSQL server the tests can reach, stop and start again. */
export interface TestPostgres {
  /** A connection URL with the password in it. */
  readonly url: string;
  /** The password in {@link url}, so tests can check that it is never shown. */
  readonly password: string;
  /** Whether this process started the server (and can stop it). */
  readonly owned: boolean;
  /** Stops the server (`pg_ctl stop -m <mode>`; `immediate` is a crash). Only for an owned server. */
  stop(mode?: 'smart' | 'fast' | 'immediate'): Promise<void>;
  /** Starts a stopped server again on the same port. Only for an owned server. */
  start(): Promise<void>;
  /** Stops the server and removes its folder (nothing for an existing server). */
  dispose(): Promise<void>;
}

const USER = 'stepcache';

/**
 * Starts a throwaway cluster (or returns `STEPCACHE_TEST_POSTGRES_URL` when set, unless `own` is asked for:
 * tests that stop the server need one of their own).
 */
export const testPostgres = async (options: { readonly own?: boolean } = {}): Promise<TestPostgres> => {
  if (options.own === true) return startPostgres();
  const found = await provide(postgresTool);
  if (found._tag === 'Running') {
    const existing = found.url;
    const notOwned = (): Promise<void> => Promise.reject(new Error('The server of STEPCACHE_TEST_POSTGRES_URL is not this test\'s to stop or start.'));
    return { url: existing, password: decodeURIComponent(new URL(existing).password), owned: false, stop: notOwned, start: notOwned, dispose: async () => undefined };
  }
  return startPostgres(found.bin);
};

/** Creates a cluster in a temporary folder and starts it on 127.0.0.1 on a free port. */
export const startPostgres = async (binaries?: string): Promise<TestPostgres> => {
  const bin = binaries ?? (await postgresBinaries());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-pg-'));
  const data = path.join(dir, 'data');
  const password = `pw-${Math.random().toString(36).slice(2)}-secret`;
  fs.writeFileSync(path.join(dir, 'pwfile'), `${password}\n`);
  const asServerUser = await serverUser(dir);
  const pg = (program: string, args: readonly string[]): Promise<string> => asServerUser(path.join(bin, program), args);

  await pg('initdb', ['-D', data, '-U', USER, `--pwfile=${path.join(dir, 'pwfile')}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  fs.rmSync(path.join(dir, 'pwfile'));

  let port = 0;
  // fsync=off: a crash of the server (pg_ctl stop -m immediate) keeps every commit, as the operating system still has it;
  // only a crash of the machine would not, and these clusters do not outlive the tests.
  const start = async (): Promise<void> => {
    const settings = ['-k', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'full_page_writes=off'];
    await pg('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-o', settings.join(' '), '-w', '-t', '60', 'start']);
  };
  // The port is free when chosen; another process may take it before the server does: choose again.
  port = await onFreePort(async (p) => {
    port = p;
    await start();
  });
  const url = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  let running = true;
  const stop = async (mode: 'smart' | 'fast' | 'immediate' = 'fast'): Promise<void> => {
    await pg('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
    running = false;
  };
  return {
    url,
    password,
    owned: true,
    stop,
    start: async () => {
      await start();
      running = true;
    },
    dispose: async () => {
      if (running) await stop('fast').catch(() => stop('immediate'));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
};

/** A function that runs a program as a user PostgreSQL accepts (not root), after giving that user `dir`. */
const serverUser = async (dir: string): Promise<(file: string, args: readonly string[]) => Promise<string>> => {
  if (!isRoot()) return (file, args) => run(file, args);
  const user = 'postgres';
  const known = await run('id', ['-u', user]).catch(() => undefined);
  if (known === undefined) await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
  const uid = Number((await run('id', ['-u', user])).trim());
  const gid = Number((await run('id', ['-g', user])).trim());
  fs.chownSync(dir, uid, gid);
  for (const f of fs.readdirSync(dir)) fs.chownSync(path.join(dir, f), uid, gid);
  return (file, args) => run('runuser', ['-u', user, '--', file, ...args]);
};
