/**
 * A Redis server for tests and benchmarks (the queue of distributed execution), provisioned like
 * every outside tool (see `core.ts`):
 *
 * - pointed at: `STEPCACHE_TEST_REDIS_URL` (`redis://host:port`) names a running server, used as it is;
 * - found: Debian's `redis-server` (on the `PATH` or in `/usr/bin`);
 * - installed: `apt-get install -y redis-server` when running as root; else one error naming that command.
 *
 * A server started here listens on 127.0.0.1 on a free port, keeps nothing on disk (`--save ''`,
 * `--appendonly no`), never evicts keys (`--maxmemory-policy noeviction`, which BullMQ requires),
 * and works in a temporary folder removed when it stops.
 *
 * @example
 * let redis: RedisServer;
 * beforeAll(async () => (redis = await provideRedisServer()), 120_000);
 * afterAll(() => redis.stop());
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import { removeDir, tempDir } from '../fixtures';
import { apt, findExecutable, provide, type Tool } from './core';
import { onFreePort, startServer, type Server, type ServerSpec } from './server';

// model

/** A running Redis server and how to reach it. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Whether this process started it (and may stop and start it again). */
  readonly owned: boolean;
  /** Stops the server (SIGKILL when `crash`); for a server started here, the folder stays until {@link dispose}. */
  stop(options?: { readonly crash?: boolean }): Promise<void>;
  /** Starts a stopped server again on the same port (only a server started here). */
  start(): Promise<void>;
  /** Stops it and removes its folder. */
  dispose(): Promise<void>;
}

/** A server the variable points at, or the binary to start one. */
export type RedisFound = { readonly _tag: 'Running'; readonly url: string } | { readonly _tag: 'Binary'; readonly file: string };

// the tool

/**
 * Redis: the server `STEPCACHE_TEST_REDIS_URL` names, or Debian's `redis-server`.
 *
 * @example
 * const found = await provide(redisTool); // { _tag: 'Binary', file: '/usr/bin/redis-server' }
 */
export const redisTool: Tool<RedisFound> = {
  name: 'Redis (redis-server)',
  neededBy: 'test/distributed.test.ts',
  variable: 'STEPCACHE_TEST_REDIS_URL',
  fromVariable: (value) => (/^rediss?:\/\/[^/]+/.test(value) ? { _tag: 'Running', url: value } : undefined),
  find: (env) => {
    const file = findExecutable('redis-server', env) ?? (fs.existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : undefined);
    return file === undefined ? undefined : { _tag: 'Binary', file };
  },
  recipe: apt('redis-server'),
};

/**
 * How to start `redis-server` on 127.0.0.1 on `port`, with nothing kept on disk and no eviction.
 *
 * @example
 * const spec = redisSpec('/usr/bin/redis-server', 6390, '/tmp/redis-1');
 */
export const redisSpec = (file: string, port: number, dir: string): ServerSpec => ({
  name: 'Redis',
  file,
  args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--dir', dir],
  cwd: dir,
  ready: { _tag: 'Listens', port },
});

/**
 * Starts `redis-server` on a free port in a new temporary folder.
 *
 * @example
 * const redis = await startRedis('/usr/bin/redis-server');
 * try { ... new IORedis(redis.url) ... } finally { await redis.dispose(); }
 */
export const startRedis = async (file: string): Promise<RedisServer> => {
  const dir = tempDir('stepcache-redis-');
  let server: Server | undefined;
  let port = 0;
  const start = async (): Promise<void> => {
    server = await startServer(redisSpec(file, port, dir));
  };
  // A free port may be taken before the server binds it: choose again.
  try {
    port = await onFreePort(async (p) => {
      port = p;
      await start();
    });
  } catch (e) {
    removeDir(dir);
    throw e;
  }
  const stop = async (options: { readonly crash?: boolean } = {}): Promise<void> => {
    if (server === undefined || !server.running()) return;
    if (options.crash === true) process.kill(server.pid, 'SIGKILL');
    await server.stop();
  };
  return {
    url: `redis://127.0.0.1:${String(port)}`,
    owned: true,
    stop,
    start,
    dispose: async () => {
      await stop();
      removeDir(dir);
    },
  };
};

/**
 * The Redis server for this test run: the one `STEPCACHE_TEST_REDIS_URL` names, else a fresh
 * `redis-server` (installed with apt-get when missing and running as root). `own`: a test that
 * stops the server needs one of its own.
 *
 * @example
 * let redis: RedisServer;
 * beforeAll(async () => (redis = await provideRedisServer()), 120_000);
 * afterAll(() => redis.dispose());
 */
export const provideRedisServer = async (options: { readonly own?: boolean } = {}): Promise<RedisServer> => {
  const variable = process.env['STEPCACHE_TEST_REDIS_URL'];
  const found = options.own === true && variable !== undefined && variable !== '' ? await provide({ ...redisTool, variable: 'STEPCACHE_TEST_REDIS_OWN_URL' }) : await provide(redisTool);
  if (found._tag === 'Binary') return startRedis(found.file);
  const notOwned = (): Promise<void> => Promise.reject(new Error("The server of STEPCACHE_TEST_REDIS_URL is not this test's to stop or start."));
  return { url: found.url, owned: false, stop: notOwned, start: notOwned, dispose: async () => undefined };
};
