/**
 * A real PostgreSQL server for the tests: `STEPCACHE_TEST_POSTGRES_URL` when set (an existing
 * server), otherwise a throwaway cluster started from Debian's server binaries in a temporary
 * folder, listening on 127.0.0.1 on a free port, with a password (so tests can check that
 * messages never show it).
 *
 * PostgreSQL refuses to run as root: when the tests run as root, the cluster is created and run
 * by the unprivileged `postgres` user (`runuser -u postgres`), which owns the temporary folder.
 *
 * Small functions (free port, wait until ready, run a command) that a shared provisioning core can take over.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createFileStepLock } from '../../../src/lock';

// utils

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it resolves to true; rejects naming `what` after `timeoutMs`. */
export const waitUntil = async (what: string, check: () => Promise<boolean>, timeoutMs = 30_000, intervalMs = 100): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting until ${what}.`);
    await pause(intervalMs);
  }
};

/** Runs a program to completion; rejects with its output when it fails. */
export const run = (file: string, args: readonly string[], options: { readonly env?: NodeJS.ProcessEnv } = {}): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(file, args, { env: options.env ?? process.env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${[file, ...args].join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

// binaries

const INSTALL_HINT = 'apt-get update && apt-get install -y postgresql';
/** The install lock's key (lock keys are hex): `postgresql` in hex. */
const INSTALL_LOCK_KEY = Buffer.from('postgresql').toString('hex').padEnd(16, '0');

const findBinaries = (): string | undefined => {
  const fromEnv = process.env['STEPCACHE_POSTGRES_BIN'];
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
 * The folder of PostgreSQL's server binaries (initdb, pg_ctl, postgres). Installs Debian's package
 * when missing and running as root; otherwise fails with one message naming what is missing.
 */
export const postgresBinaries = async (): Promise<string> => {
  const found = findBinaries();
  if (found !== undefined) return found;
  if (isRoot()) {
    // Test files run in parallel workers: one install at a time (apt-get holds dpkg's lock), then look again.
    const release = await createFileStepLock(path.join(os.tmpdir(), 'stepcache-test-tools', 'locks')).acquire(INSTALL_LOCK_KEY);
    try {
      if (findBinaries() === undefined) await run('sh', ['-c', `${INSTALL_HINT} >/dev/null`], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    } finally {
      await release();
    }
    const installed = findBinaries();
    if (installed !== undefined) return installed;
  }
  throw new Error(
    `The PostgreSQL tests need a server: no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/<version>/bin or $STEPCACHE_POSTGRES_BIN. ` +
      `Install them with \`sudo ${INSTALL_HINT}\`, or set STEPCACHE_TEST_POSTGRES_URL to an existing server (postgres://user:password@host:port/db).`,
  );
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
  const existing = process.env['STEPCACHE_TEST_POSTGRES_URL'];
  if (existing !== undefined && existing !== '' && options.own !== true) {
    const notOwned = (): Promise<void> => Promise.reject(new Error('The server of STEPCACHE_TEST_POSTGRES_URL is not this test\'s to stop or start.'));
    return { url: existing, password: decodeURIComponent(new URL(existing).password), owned: false, stop: notOwned, start: notOwned, dispose: async () => undefined };
  }
  return startPostgres();
};

/** Creates a cluster in a temporary folder and starts it on 127.0.0.1 on a free port. */
export const startPostgres = async (): Promise<TestPostgres> => {
  const bin = await postgresBinaries();
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
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await start();
      break;
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
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
