/**
 * An S3-compatible server for tests and benchmarks: s3rver in a child process (so that its
 * memory and CPU are not counted as ours), listening on 127.0.0.1 on a free port, with its data
 * in a temporary folder removed when it stops. `STEPCACHE_TEST_S3_URL` points at an existing
 * server instead (credentials then come from the AWS SDK's default chain, the bucket from
 * `STEPCACHE_TEST_S3_BUCKET`, default `stepcache-test`, created when missing).
 *
 * Self-contained: small functions meant to be folded into the shared provisioning core.
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

/** The program the child process runs: start s3rver, print its port, stop when stdin closes. */
const CHILD_PROGRAM = `
const [modulePath, directory, bucket] = process.argv.slice(1);
const S3rver = require(modulePath);
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
server.run().then(
  (address) => process.stdout.write(JSON.stringify({ port: address.port }) + '\\n'),
  (error) => { process.stderr.write(String(error && error.stack || error)); process.exit(1); },
);
process.stdin.resume();
process.stdin.on('end', () => server.close().then(() => process.exit(0), () => process.exit(1)));
`;

/** Waits for the child's first line of output, which carries the port it listens on. */
const portOf = (child: ChildProcess): Promise<number> =>
  new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line !== undefined) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => reject(new Error(`s3rver exited (code ${String(code)}) before listening: ${err}`)));
    child.on('error', reject);
  });

const stopChild = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin?.end();
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
  const child = spawn(process.execPath, ['-e', CHILD_PROGRAM, require.resolve('s3rver'), directory, bucket], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    const port = await portOf(child);
    const endpoint = `http://127.0.0.1:${port}`;
    return {
      endpoint,
      bucket,
      clientConfig: testClientConfig(endpoint, S3RVER_CREDENTIALS),
      stop: async () => {
        await stopChild(child);
        fs.rmSync(directory, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await stopChild(child);
    fs.rmSync(directory, { recursive: true, force: true });
    throw e;
  }
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
