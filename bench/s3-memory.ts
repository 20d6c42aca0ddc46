/**
 * Memory of the S3 artifact store: a {@link ARTIFACT_MIB} MiB artifact stored to and loaded from an
 * S3-compatible server (s3rver in its own process, on 127.0.0.1), measuring how far the process's
 * memory rises above what it held before, beyond the artifact's own buffer. Goal: at most
 * {@link MEMORY_GOAL_FACTOR} x part size x queue size (the parts in flight), for both directions.
 *
 * Each direction runs in a fresh process, after a warm-up transfer of a smaller multipart artifact
 * (so that loading the SDK and opening connections are not counted), with a forced full garbage
 * collection before the baseline; `process.memoryUsage()` is sampled every millisecond or so
 * while the transfer runs. `arrayBuffers` counts the Buffers alone; `rss` everything the process
 * holds (it includes memory the garbage collector has not yet returned).
 *
 * Storing sends slices of the caller's buffer: the rise is a few MB. Loading fills one buffer of
 * the artifact's size, but Node's HTTP parser hands over the response body in fresh 64 KiB
 * Buffers, which V8 collects only once external memory has grown by its own threshold (tens of
 * MB): the rise while loading is that garbage, about the same for 256 MiB as for 768 MiB (38 to
 * 46 MB measured for both), not a second copy, and no setting of the store bounds it.
 *
 * The server is s3rver on 127.0.0.1, or the one `STEPCACHE_TEST_S3_URL` names.
 *
 * Usage (what `measureS3Memory` does):
 *   node --expose-gc --import tsx bench/s3-memory.ts put <bytes>          (prints {@link PutChildResult})
 *   node --expose-gc --import tsx bench/s3-memory.ts get <id> <bytes> <warmId> <warmBytes>
 * with the client settings in `STEPCACHE_BENCH_S3` (JSON: endpoint, bucket, clientConfig).
 *
 * @packageDocumentation
 */
import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { createS3ArtifactStore, type S3ArtifactStore } from '../src/index';
import { provideS3Server } from '../test/support/provision/s3';
import { collectGarbage } from './measure';

const MIB = 1024 * 1024;
/** The size of the measured artifact, in MiB. */
export const ARTIFACT_MIB = 256;
/** Bytes per uploaded part. */
export const PART_SIZE = 8 * MIB;
/** Parts in flight at once. */
export const QUEUE_SIZE = 4;
/** The goal: memory above the baseline, beyond the artifact's own buffer, at most this many times part size x queue size. */
export const MEMORY_GOAL_FACTOR = 1.2;
const WARM_UP_BYTES = 3 * PART_SIZE + 12345;
/** Transfers measured in each direction (the garbage collector's timing makes single figures vary). */
export const TRANSFERS = 3;
const PREFIX = 'bench-memory';

/** How far memory rose above the baseline during one transfer, beyond the artifact's own buffer. */
export interface Rise {
  /** Bytes of `rss` above the baseline. */
  readonly rss: number;
  /** Bytes of `arrayBuffers` (Buffers) above the baseline. */
  readonly arrayBuffers: number;
  /** Milliseconds the transfer took. */
  readonly ms: number;
  /** How many samples were taken. */
  readonly samples: number;
}

/** What the `put` child prints: one rise per stored artifact (each with other random bytes). */
export interface PutChildResult {
  readonly rises: readonly Rise[];
  /** The id of the last artifact stored, which the `get` child loads. */
  readonly id: string;
  readonly warmId: string;
}

/** What the `get` child prints: one rise per load. */
export interface GetChildResult {
  readonly rises: readonly Rise[];
  /** Whether every load verified and had the expected size. */
  readonly verified: boolean;
}

/** The whole measurement. */
export interface S3MemoryResult {
  readonly bytes: number;
  readonly budget: number;
  readonly put: PutChildResult;
  readonly get: GetChildResult;
}

interface Settings {
  readonly bucket: string;
  readonly clientConfig: Record<string, unknown>;
}

/** Samples memory while `action` runs; returns the peaks above the baseline taken just before. */
const riseDuring = async <A>(action: () => Promise<A>, ownBytes: number): Promise<{ readonly result: A; readonly rise: Rise }> => {
  collectGarbage();
  collectGarbage();
  const base = process.memoryUsage();
  let peakRss = base.rss;
  let peakBuffers = base.arrayBuffers;
  let samples = 0;
  const sample = (): void => {
    const now = process.memoryUsage();
    peakRss = Math.max(peakRss, now.rss);
    peakBuffers = Math.max(peakBuffers, now.arrayBuffers);
    samples++;
  };
  const timer = setInterval(sample, 1);
  const started = performance.now();
  try {
    const result = await action();
    sample();
    const ms = performance.now() - started;
    return { result, rise: { rss: peakRss - base.rss - ownBytes, arrayBuffers: peakBuffers - base.arrayBuffers - ownBytes, ms, samples } };
  } finally {
    clearInterval(timer);
  }
};

const openStore = (settings: Settings): S3ArtifactStore =>
  createS3ArtifactStore({ bucket: settings.bucket, prefix: PREFIX, clientConfig: settings.clientConfig, partSize: PART_SIZE, queueSize: QUEUE_SIZE });

const randomArtifact = (bytes: number): Buffer => {
  const artifact = Buffer.allocUnsafeSlow(bytes);
  for (let offset = 0; offset < bytes; offset += 64 * MIB) randomFillSync(artifact, offset, Math.min(64 * MIB, bytes - offset));
  return artifact;
};

const putChild = async (settings: Settings, bytes: number): Promise<PutChildResult> => {
  const store = openStore(settings);
  try {
    const warmId = await store.put(randomArtifact(WARM_UP_BYTES));
    const artifact = randomArtifact(bytes);
    const rises: Rise[] = [];
    let id = '';
    for (let i = 0; i < TRANSFERS; i++) {
      if (i > 0) randomFillSync(artifact); // other bytes: a put of stored bytes only asks whether they are there
      const measured = await riseDuring(() => store.put(artifact), 0); // the artifact is already in the baseline
      id = measured.result;
      rises.push(measured.rise);
    }
    return { rises, id, warmId };
  } finally {
    store.close();
  }
};

const getChild = async (settings: Settings, id: string, bytes: number, warmId: string, warmBytes: number): Promise<GetChildResult> => {
  const store = openStore(settings);
  try {
    const warm = await store.get({ id: warmId, size: warmBytes });
    if (E.isLeft(warm)) throw new Error(`the warm-up artifact did not load: ${warm.left.message}`);
    const rises: Rise[] = [];
    let verified = true;
    for (let i = 0; i < TRANSFERS; i++) {
      const measured = await riseDuring(async () => {
        const loaded = await store.get({ id, size: bytes });
        return E.isRight(loaded) && loaded.right.length === bytes; // the loaded buffer is dropped before the next baseline
      }, bytes); // the loaded artifact's own buffer
      verified &&= measured.result;
      rises.push(measured.rise);
    }
    return { rises, verified };
  } finally {
    store.close();
  }
};

const runChild = <A>(args: readonly string[], settings: Settings): Promise<A> =>
  new Promise((resolve, reject) => {
    const execArgv = process.execArgv.filter((a) => !/^--(cpu|heap)-prof/.test(a) && a !== '--prof');
    const flags = execArgv.includes('--expose-gc') ? execArgv : [...execArgv, '--expose-gc'];
    execFile(process.execPath, [...flags, __filename, ...args], { env: { ...process.env, STEPCACHE_BENCH_S3: JSON.stringify(settings) }, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`the ${args[0] ?? ''} child failed: ${error.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as A);
      } catch {
        reject(new Error(`the ${args[0] ?? ''} child printed no result: ${JSON.stringify(stdout)}\n${stderr}`));
      }
    });
  });

/**
 * Stores and loads an {@link ARTIFACT_MIB} MiB artifact through s3rver, each in a fresh process,
 * and reports how far memory rose.
 *
 * @example
 * const { put, get, budget } = await measureS3Memory();
 * put.arrayBuffers <= budget;
 */
export const measureS3Memory = async (): Promise<S3MemoryResult> => {
  const server = await provideS3Server();
  try {
    const settings: Settings = { bucket: server.bucket, clientConfig: { ...server.clientConfig } };
    const bytes = ARTIFACT_MIB * MIB;
    const put = await runChild<PutChildResult>(['put', String(bytes)], settings);
    const get = await runChild<GetChildResult>(['get', put.id, String(bytes), put.warmId, String(WARM_UP_BYTES)], settings);
    return { bytes, budget: MEMORY_GOAL_FACTOR * PART_SIZE * QUEUE_SIZE, put, get };
  } finally {
    await server.stop();
  }
};

const main = async (): Promise<void> => {
  const [mode, ...args] = process.argv.slice(2);
  const raw = process.env['STEPCACHE_BENCH_S3'];
  if (mode === undefined) {
    console.log(JSON.stringify(await measureS3Memory()));
    return;
  }
  if (raw === undefined) throw new Error('STEPCACHE_BENCH_S3 is not set');
  const settings = JSON.parse(raw) as Settings;
  const [a, b, c, d] = args;
  if (mode === 'put' && a !== undefined) console.log(JSON.stringify(await putChild(settings, Number(a))));
  else if (mode === 'get' && a !== undefined && b !== undefined && c !== undefined && d !== undefined) console.log(JSON.stringify(await getChild(settings, a, Number(b), c, Number(d))));
  else throw new Error(`usage: ${path.basename(__filename)} [put <bytes> | get <id> <bytes> <warmId> <warmBytes>]`);
};

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
