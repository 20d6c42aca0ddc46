/**
 * The servers tests start for themselves (support/provision/server.ts): free ports, readiness by
 * output or by a listening port, early exits, and stopping. The servers are small real node
 * processes.
 */
import * as net from 'node:net';
import { freePort, startServer, type Server } from './support/provision/server';

const started: Server[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
});
const start = async (...args: Parameters<typeof startServer>): Promise<Server> => {
  const server = await startServer(...args);
  started.push(server);
  return server;
};

/** A node program that listens on `port` of 127.0.0.1, then prints `listening`. */
const listener = (port: number): string => `require('node:net').createServer((s) => s.end()).listen(${port}, '127.0.0.1', () => console.log('listening'))`;

/** Whether a process with this pid exists. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The rejection of a promise, which must reject with an Error. */
const failure = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof Error) return e;
    throw e;
  }
  throw new Error('expected a rejection');
};

describe('freePort', () => {
  it('gives a port of 127.0.0.1 that a server can listen on', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('gives different ports to servers listening at the same time', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const servers = await Promise.all(ports.map((port) => start({ name: `listener ${port}`, file: process.execPath, args: ['-e', listener(port)], ready: { _tag: 'Listens', port } })));
    expect(new Set(servers.map((s) => s.pid)).size).toBe(3);
    expect(servers.every((s) => s.running())).toBe(true);
  });
});

describe('startServer', () => {
  it('ready once the port accepts connections', async () => {
    const port = await freePort();
    const server = await start({ name: 'listener', file: process.execPath, args: ['-e', listener(port)], ready: { _tag: 'Listens', port } });
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    expect(connected).toBe(true);
    expect(server.running()).toBe(true);
  });

  it('ready once the output matches, with the output kept', async () => {
    const server = await start({
      name: 'printer',
      file: process.execPath,
      args: ['-e', 'console.error("starting"); setTimeout(() => console.log("ready to accept connections"), 20); setInterval(() => {}, 1000)'],
      ready: { _tag: 'Prints', pattern: /ready to accept connections/ },
    });
    expect(server.output()).toContain('starting');
    expect(server.output()).toContain('ready to accept connections');
  });

  it('passes the environment, the folder and the arguments', async () => {
    const server = await start({
      name: 'env',
      file: process.execPath,
      args: ['-e', 'console.log(`${process.env.GREETING} ${process.cwd()} ${process.argv[1]}`); setInterval(() => {}, 1000)', 'arg'],
      env: { GREETING: 'hi' },
      cwd: '/',
      ready: { _tag: 'Prints', pattern: /\n/ },
    });
    expect(server.output()).toBe('hi / arg\n');
  });

  it('a server that exits before it is ready: the error names it, its exit and its output', async () => {
    const error = await failure(startServer({ name: 'broken', file: process.execPath, args: ['-e', 'console.error("no config"); process.exit(3)'], ready: { _tag: 'Listens', port: await freePort() } }));
    expect(error.message).toMatch(/^broken \(.* -e .*\) exited with 3 before it was ready\. It printed:\nno config/);
  });

  it('a command that does not exist: the error says it could not start', async () => {
    const error = await failure(startServer({ name: 'ghost', file: '/nonexistent/server', args: [], ready: { _tag: 'Prints', pattern: /x/ } }));
    expect(error.message).toContain('ghost (/nonexistent/server) could not start');
  });

  it('a server not ready in time is stopped and the start fails', async () => {
    const error = await failure(startServer({ name: 'silent', file: process.execPath, args: ['-e', 'console.log(process.pid); setInterval(() => {}, 1000)'], ready: { _tag: 'Prints', pattern: /never/ }, startTimeoutMs: 300 }));
    expect(error.message).toContain('silent (');
    expect(error.message).toContain('was not ready within 300 ms; stopped it');
    const pid = Number(/It printed:\n(\d+)/.exec(error.message)?.[1]);
    expect(alive(pid)).toBe(false);
  });

  it('stop ends the process, even one that ignores SIGTERM, and may be called again', async () => {
    const server = await start({
      name: 'stubborn',
      file: process.execPath,
      args: ['-e', 'process.on("SIGTERM", () => console.log("ignored")); console.log("up"); setInterval(() => {}, 1000)'],
      ready: { _tag: 'Prints', pattern: /up/ },
      stopTimeoutMs: 200,
    });
    await server.stop();
    expect(server.running()).toBe(false);
    expect(alive(server.pid)).toBe(false);
    expect(server.output()).toContain('ignored');
    await server.stop();
  });
});
