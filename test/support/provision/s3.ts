/**
 * An S3-compatible server for tests and benchmarks, provisioned like every outside tool (see
 * `core.ts`):
 *
 * - pointed at: `STEPCACHE_TEST_S3_URL` names a running server (credentials then come from the
 *   AWS SDK's default chain; the bucket `STEPCACHE_TEST_S3_BUCKET`, default `stepcache-test`, is
 *   created when missing);
 * - found: this repository's devDependency s3rver, started in a child process (so that its
 *   memory and CPU are not counted as ours) on 127.0.0.1 on a port the system chooses, with its
 *   data in a temporary folder removed when it stops, and patched to answer a PUT only once the
 *   object is completely written (see s3rver-complete-writes.cjs).
 *
 * @example
 * let server: S3Server;
 * beforeAll(async () => (server = await provideS3Server()), 60_000);
 * afterAll(() => server.stop());
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { removeDir, tempDir } from '../fixtures';
import { projectDependency, provide, REPOSITORY, type Tool } from './core';
import { startServer, type ServerSpec } from './server';

// model

/** A running S3-compatible server and how to reach it. */
export interface S3Server {
  /** The endpoint URL, e.g. `http://127.0.0.1:43123`. */
  readonly endpoint: string;
  /** A bucket that exists on the server. */
  readonly bucket: string;
  /** Client settings that work with this server (path-style addressing, checksums only when required). */
  readonly clientConfig: S3ClientConfig;
  /** Stops the server (when it was started here) and removes its data. */
  stop(): Promise<void>;
}

/** A server the variable points at, or the s3rver script to start one. */
export type S3Found = { readonly _tag: 'Running'; readonly url: string } | { readonly _tag: 'S3rver'; readonly script: string };

// constants

/** s3rver's built-in account. */
const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
const DEFAULT_BUCKET = 'stepcache-test';
/** How a started s3rver says it is ready, with the port it chose. */
const LISTENING = /S3rver listening on [\d.]+:(\d+)/;
/** Loaded into s3rver's process: it answers a PUT only once the object is completely written. */
const COMPLETE_WRITES = path.join(__dirname, 's3rver-complete-writes.cjs');

// the tool

/**
 * An S3-compatible server: the one `STEPCACHE_TEST_S3_URL` names, or this repository's s3rver.
 *
 * @example
 * const found = await provide(s3Tool); // { _tag: 'S3rver', script: '…/node_modules/s3rver/bin/s3rver.js' }
 */
export const s3Tool: Tool<S3Found> = {
  name: 'an S3-compatible server (s3rver)',
  neededBy: 'test/s3-artifact-store.test.ts',
  variable: 'STEPCACHE_TEST_S3_URL',
  fromVariable: (value) => (/^https?:\/\/[^/]+/.test(value) ? { _tag: 'Running', url: value.replace(/\/+$/, '') } : undefined),
  find: () => {
    const script = path.join(REPOSITORY, 'node_modules', 's3rver', 'bin', 's3rver.js');
    return fs.existsSync(script) ? { _tag: 'S3rver', script } : undefined;
  },
  recipe: projectDependency('s3rver'),
};

/**
 * Client settings for an S3-compatible test server. s3rver stores `aws-chunked` uploads (what the
 * SDK sends when it adds checksums by default) wrongly, so checksums are sent and checked only
 * where the protocol requires them.
 *
 * @example
 * const client = new S3Client(testClientConfig('http://127.0.0.1:4568'));
 */
export const testClientConfig = (endpoint: string, credentials?: S3ClientConfig['credentials']): S3ClientConfig => ({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  ...(credentials === undefined ? {} : { credentials }),
});

// s3rver

/**
 * How to start s3rver on 127.0.0.1 on a port the system chooses, with one bucket and its data in
 * `directory`, answering a PUT only once the object is completely written.
 *
 * @example
 * const spec = s3rverSpec('/repo/node_modules/s3rver/bin/s3rver.js', '/tmp/s3-data', 'stepcache-test');
 */
export const s3rverSpec = (script: string, directory: string, bucket: string): ServerSpec => ({
  name: 'S3 (s3rver)',
  file: process.execPath,
  args: ['--require', COMPLETE_WRITES, script, '--directory', directory, '--address', '127.0.0.1', '--port', '0', '--silent', '--configure-bucket', bucket],
  ready: { _tag: 'Prints', pattern: LISTENING },
});

/**
 * Starts s3rver in a child process, with one bucket and its data in a new temporary folder.
 *
 * @example
 * const server = await startS3rver('/repo/node_modules/s3rver/bin/s3rver.js');
 * try { ... new S3Client(server.clientConfig) ... } finally { await server.stop(); }
 */
export const startS3rver = async (script: string, bucket: string = DEFAULT_BUCKET): Promise<S3Server> => {
  const directory = tempDir('stepcache-s3rver-');
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(s3rverSpec(script, directory, bucket));
  } catch (e) {
    removeDir(directory);
    throw e;
  }
  const endpoint = `http://127.0.0.1:${LISTENING.exec(server.output())?.[1] ?? ''}`;
  return {
    endpoint,
    bucket,
    clientConfig: testClientConfig(endpoint, S3RVER_CREDENTIALS),
    stop: async () => {
      await server.stop();
      removeDir(directory);
    },
  };
};

/**
 * Uses the server at `url`, creating the bucket when it does not exist; stopping it does nothing.
 *
 * @example
 * const server = await useExistingS3Server('http://127.0.0.1:9000');
 */
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
 * The S3 server for this test run: the one `STEPCACHE_TEST_S3_URL` names, else a fresh s3rver.
 *
 * @example
 * let server: S3Server;
 * beforeAll(async () => (server = await provideS3Server()), 60_000);
 * afterAll(() => server.stop());
 */
export const provideS3Server = async (): Promise<S3Server> => {
  const found = await provide(s3Tool);
  return found._tag === 'Running' ? useExistingS3Server(found.url, process.env['STEPCACHE_TEST_S3_BUCKET'] || DEFAULT_BUCKET) : startS3rver(found.script);
};
