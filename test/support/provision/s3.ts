/**
 * An S3-compatible server for tests and benchmarks: s3rver in a child process (so that its
 * memory and CPU are not counted as ours), listening on 127.0.0.1 on a port the system chooses,
 * with its data in a temporary folder removed when it stops. `STEPCACHE_TEST_S3_URL` points at an existing
 * server instead (credentials then come from the AWS SDK's default chain, the bucket from
 * `STEPCACHE_TEST_S3_BUCKET`, default `stepcache-test`, created when missing).
 *
 * Self-contained: `s3rverSpec` has the shape of the provisioning core's server spec, so `launch`
 * here gives way to the core's `startServer` when the two meet.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

/** A running S3-compatible server and how to reach it. */
export interface S3Server {
  /** The endpoint URL, e.g. `http://127.0.0.1:43123`. */
  readonly endpoint: string;
  /** A bucket that exists on the server. */
  readonly bucket: string;
  /** Client settings that work with this server (path-style addressing, checksums only when required). */
  readonly clientConfig: S3ClientConfig;
  /** Stops the server (when this module started it) and removes its data. */
  stop(): Promise<void>;
}

/** s3rver's built-in account. */
const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
const DEFAULT_BUCKET = 'stepcache-test';

/**
 * Client settings for an S3-compatible test server. s3rver stores `aws-chunked` uploads (what the
 * SDK sends when it adds checksums by default) wrongly, so checksums are sent and checked only
 * where the protocol requires them.
 */
export const testClientConfig = (endpoint: string, credentials?: S3ClientConfig['credentials']): S3ClientConfig => ({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  ...(credentials === undefined ? {} : { credentials }),
});

/** How a started s3rver says it is ready, with the port it chose. */
const LISTENING = /S3rver listening on [\d.]+:(\d+)/;

/**
 * The command that starts s3rver on 127.0.0.1 on a port the system chooses, with one bucket and
 * its data in `directory`, answering a PUT only once the object is completely written (see
 * s3rver-complete-writes.cjs); shaped as the provisioning core's server spec (`startServer`).
 *
 * @example
 * const spec = s3rverSpec('/tmp/s3-data', 'stepcache-test');
 */
export const s3rverSpec = (directory: string, bucket: string) =>
  ({
    name: 'S3 (s3rver)',
    file: process.execPath,
    args: ['--require', path.join(__dirname, 's3rver-complete-writes.cjs'), require.resolve('s3rver/bin/s3rver.js'), '--directory', directory, '--address', '127.0.0.1', '--port', '0', '--silent', '--configure-bucket', bucket],
    ready: { _tag: 'Prints', pattern: LISTENING },
  }) as const;

/** The port s3rver printed that it listens on. */
export const s3rverPort = (output: string): number | undefined => {
  const port = LISTENING.exec(output)?.[1];
  return port === undefined ? undefined : Number(port);
};

/** Starts a command and resolves with what it printed once `ready` matches; `stop` ends it (SIGTERM, then SIGKILL). */
const launch = (spec: ReturnType<typeof s3rverSpec>): Promise<{ readonly output: () => string; readonly stop: () => Promise<void> }> =>
  new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(spec.file, [...spec.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let exited = false;
    const stop = (): Promise<void> =>
      new Promise((done) => {
        if (exited) return done();
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(killer);
          done();
        });
        child.kill('SIGTERM');
      });
    const seen = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (spec.ready.pattern.test(output)) resolve({ output: () => output, stop });
    };
    child.stdout?.on('data', seen);
    child.stderr?.on('data', seen);
    child.once('error', reject);
    child.once('exit', (code) => {
      exited = true;
      reject(new Error(`${spec.name} exited (${String(code)}) before it was ready: ${output.slice(-4000)}`));
    });
  });

/**
 * Starts s3rver in a child process on 127.0.0.1 on a free port, with one bucket, its data in a new
 * temporary folder.
 *
 * @example
 * const server = await startS3rver();
 * try { ... new S3Client(server.clientConfig) ... } finally { await server.stop(); }
 */
export const startS3rver = async (bucket: string = DEFAULT_BUCKET): Promise<S3Server> => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-s3rver-'));
  const removeData = (): void => fs.rmSync(directory, { recursive: true, force: true });
  let server: Awaited<ReturnType<typeof launch>>;
  try {
    server = await launch(s3rverSpec(directory, bucket));
  } catch (e) {
    removeData();
    throw e;
  }
  const endpoint = `http://127.0.0.1:${String(s3rverPort(server.output()))}`;
  return {
    endpoint,
    bucket,
    clientConfig: testClientConfig(endpoint, S3RVER_CREDENTIALS),
    stop: async () => {
      await server.stop();
      removeData();
    },
  };
};

/** Uses the server at `url`, creating the bucket when it does not exist; stopping it does nothing. */
export const useExistingS3Server = async (url: string, bucket: string = DEFAULT_BUCKET): Promise<S3Server> => {
  const clientConfig = testClientConfig(url);
  const client = new S3Client(clientConfig);
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket })).catch(() => client.send(new CreateBucketCommand({ Bucket: bucket })));
  } finally {
    client.destroy();
  }
  return { endpoint: url, bucket, clientConfig, stop: async () => undefined };
};

/**
 * The S3 server for this test run: `STEPCACHE_TEST_S3_URL` when set, otherwise a fresh s3rver.
 *
 * @example
 * let server: S3Server;
 * beforeAll(async () => (server = await s3ServerForTests()));
 * afterAll(() => server.stop());
 */
export const s3ServerForTests = (): Promise<S3Server> => {
  const url = process.env['STEPCACHE_TEST_S3_URL'];
  return url !== undefined && url !== '' ? useExistingS3Server(url, process.env['STEPCACHE_TEST_S3_BUCKET'] ?? DEFAULT_BUCKET) : startS3rver();
};
