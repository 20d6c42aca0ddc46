/**
 * Servers that tests start for themselves (PostgreSQL, Redis, an S3 server, ...): a free port on
 * 127.0.0.1, a child process started and waited for until it is ready, and stopped at the end.
 * A server still running when the test process exits is killed then.
 *
 * @example
 * const port = await freePort();
 * const redis = await startServer({
 *   name: 'Redis',
 *   file: '/usr/bin/redis-server',
 *   args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--maxmemory-policy', 'noeviction'],
 *   ready: { _tag: 'Listens', port },
 * });
 * afterAll(() => redis.stop());
 *
 * @packageDocumentation
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';

// model

/**
 * When a started server counts as ready: once its output (stdout or stderr) matches `pattern`,
 * or once `port` on 127.0.0.1 accepts a connection.
 *
 * @example
 * const printed: Readiness = { _tag: 'Prints', pattern: /ready to accept connections/ };
 * const listening: Readiness = { _tag: 'Listens', port: 6379 };
 */
export type Readiness = { readonly _tag: 'Prints'; readonly pattern: RegExp } | { readonly _tag: 'Listens'; readonly port: number };

/**
 * How to start a server.
 *
 * @example
 * const spec: ServerSpec = { name: 'S3', file: s3rver, args: ['--port', String(port), '--directory', dir], ready: { _tag: 'Listens', port } };
 */
export interface ServerSpec {
  /** What it is, for messages. */
  readonly name: string;
  readonly file: string;
  readonly args: readonly string[];
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Runs the server as another user (PostgreSQL refuses to run as root); needs root. */
  readonly uid?: number;
  readonly gid?: number;
  readonly ready: Readiness;
  /**
   * How long the server may take to become ready before it is stopped and the start fails.
   * @default 60_000
   */
  readonly startTimeoutMs?: number;
  /**
   * How long `stop` waits after SIGTERM before it sends SIGKILL.
   * @default 10_000
   */
  readonly stopTimeoutMs?: number;
}

/**
 * A running server.
 *
 * @example
 * console.log(server.pid, server.output());
 * await server.stop();
 */
export interface Server {
  readonly pid: number;
  /** Everything it printed so far (stdout and stderr, interleaved). */
  output(): string;
  /** Whether it still runs. */
  running(): boolean;
  /** Stops it (SIGTERM, then SIGKILL after {@link ServerSpec.stopTimeoutMs}) and resolves once it exited. Idempotent. */
  stop(): Promise<void>;
}

// free ports

/**
 * A port on 127.0.0.1 that was free a moment ago (the operating system chose it).
 *
 * @example
 * const port = await freePort();
 */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('the operating system gave no port on 127.0.0.1'))));
    });
  });

/**
 * Starts a server on a free port, choosing again when another process took the port before the
 * server bound it (at most 4 tries); the port it listens on.
 *
 * @example
 * const port = await onFreePort((p) => startServer(specFor(p)));
 */
export const onFreePort = async (start: (port: number) => Promise<unknown>): Promise<number> => {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      await start(port);
      return port;
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
};

/** Whether `port` on 127.0.0.1 accepts a connection now. */
const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });

// processes

/** Servers of this process still running: killed when it exits. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
const killOnExit = (child: ChildProcess): void => {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
};

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it resolves to true (a rejection counts as false); rejects naming `what`
 * after `timeoutMs`.
 *
 * @example
 * await waitUntil('the lock holder waits', async () => (await waiters()) > 0);
 */
export const waitUntil = async (what: string, check: () => Promise<boolean>, timeoutMs = 30_000, intervalMs = 100): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting until ${what}.`);
    await pause(intervalMs);
  }
};

/**
 * Starts a server and resolves once it is {@link Readiness ready}. Rejects, with the command and
 * what it printed, when it exits first or is not ready in time (then it is stopped).
 *
 * @example
 * const server = await startServer({ name: 'echo', file: process.execPath, args: ['-e', 'console.log("up"); setInterval(() => {}, 1000)'], ready: { _tag: 'Prints', pattern: /^up$/m } });
 * await server.stop();
 */
export const startServer = async (spec: ServerSpec): Promise<Server> => {
  const child = spawn(spec.file, [...spec.args], {
    env: { ...process.env, ...spec.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
    ...(spec.uid === undefined ? {} : { uid: spec.uid }),
    ...(spec.gid === undefined ? {} : { gid: spec.gid }),
  });
  let output = '';
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (e) => {
      exit = `could not start: ${e.message}`;
      resolve();
    });
    child.once('exit', (code, signal) => {
      exit = signal === null ? `exited with ${String(code)}` : `was killed by ${signal}`;
      resolve();
    });
  });
  child.stdout.on('data', (chunk: Buffer) => void (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString('utf8')));
  killOnExit(child);

  const stop = async (): Promise<void> => {
    if (exit !== undefined) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), spec.stopTimeoutMs ?? 10_000);
    await exited;
    clearTimeout(killer);
  };
  const server: Server = { pid: child.pid ?? -1, output: () => output, running: () => exit === undefined, stop };

  const described = `${spec.name} (${[spec.file, ...spec.args].join(' ')})`;
  const deadline = Date.now() + (spec.startTimeoutMs ?? 60_000);
  for (;;) {
    if (spec.ready._tag === 'Prints' ? spec.ready.pattern.test(output) : await accepts(spec.ready.port)) return server;
    if (exit !== undefined) throw new Error(`${described} ${exit} before it was ready. It printed:\n${output.slice(-4000)}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${described} was not ready within ${String(spec.startTimeoutMs ?? 60_000)} ms; stopped it. It printed:\n${output.slice(-4000)}`);
    }
    await Promise.race([pause(50), exited]);
  }
};
