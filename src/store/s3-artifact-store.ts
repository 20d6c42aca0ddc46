/**
 * An artifact store in an S3 bucket (AWS S3 or any S3-compatible server), for teams: an artifact
 * a colleague or CI stored is there for every machine. Objects are content-addressed at
 * `<prefix>/cas/<id>` with the same ids as the embedded store, written once, uploaded in parts
 * straight from the caller's buffer, and verified on every load: the bytes are hashed as they
 * arrive into one buffer of the expected size, so a deleted, truncated or overwritten object is
 * a typed failure (the runner then re-runs the step), never a hit on wrong bytes.
 *
 * @packageDocumentation
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import * as E from 'fp-ts/Either';
import { StepcacheError } from '../errors';
import { contentHashing } from '../hash/hashers';
import { artifactIdOf, isArtifactId, madeBy, otherHashingMessage, type ArtifactLoadError, type ArtifactRef, type ArtifactStore, type ArtifactStoreOptions } from './artifact-store';
import { EMPTY_ARTIFACT_ID } from './serialize';

// model

/**
 * Where the S3 artifact store keeps its objects and how it talks to the server.
 *
 * @example
 * const options: S3ArtifactStoreOptions = { bucket: 'ml-team-cache', prefix: 'stepcache', region: 'eu-west-1' };
 */
export interface S3ArtifactStoreOptions extends ArtifactStoreOptions {
  /** The bucket; it must exist. */
  readonly bucket: string;
  /** The key prefix under which objects live (`<prefix>/cas/<id>`); leading and trailing slashes are ignored. @default '' */
  readonly prefix?: string;
  /** A client to use as it is (its owner closes it); otherwise the store makes one from the options below. */
  readonly client?: S3Client;
  /** The endpoint of an S3-compatible server (MinIO, Ceph, R2, ...). @default the AWS endpoint of the region */
  readonly endpoint?: string;
  /** The region. @default from the environment or the AWS profile */
  readonly region?: string;
  /** Address buckets as `<endpoint>/<bucket>` instead of `<bucket>.<endpoint>` (most S3-compatible servers need it). @default false */
  readonly forcePathStyle?: boolean;
  /** Further client settings (checksum behaviour, retries, credentials, ...). Credentials otherwise come from the SDK's default chain. */
  readonly clientConfig?: S3ClientConfig;
  /** Bytes per part of a multipart upload (at least 5 MiB); artifacts up to this size are sent in one request. @default 8 MiB */
  readonly partSize?: number;
  /** Parts uploaded at once. @default 4 */
  readonly queueSize?: number;
  /** Objects checked at once by `present`. @default 16 */
  readonly checksInFlight?: number;
  /**
   * Send `If-None-Match: *` with every write, so that a server supporting conditional writes
   * never replaces an object (servers ignoring the header are fine: the store asks first anyway).
   * @default true
   */
  readonly conditionalWrites?: boolean;
}

/**
 * An {@link ArtifactStore} in an S3 bucket, with a way to release the connections it opened.
 *
 * @example
 * const store: S3ArtifactStore = createS3ArtifactStore({ bucket: 'ml-team-cache', prefix: 'stepcache' });
 * // ... createRunner({ artifacts: store }) ...
 * store.close();
 */
export interface S3ArtifactStore extends ArtifactStore {
  /** Closes the connections of a client the store made itself (a client passed in is left to its owner). */
  close(): void;
}

// constants

const MIB = 1024 * 1024;
const DEFAULT_PART_SIZE = 8 * MIB;
const MIN_PART_SIZE = 5 * MIB;
const DEFAULT_QUEUE_SIZE = 4;
const DEFAULT_CHECKS_IN_FLIGHT = 16;
/** User metadata naming the content hash of an object, so that a replaced object is recognised before it is downloaded. */
const CONTENT_HASH_META = 'stepcache-content-hash';

// utils

/** The AWS SDK, loaded on first use: programs that never touch S3 never pay for loading it. */
type Sdk = typeof import('@aws-sdk/client-s3') & Pick<typeof import('@aws-sdk/lib-storage'), 'Upload'>;
let sdkLoading: Promise<Sdk> | undefined;
const loadSdk = (): Promise<Sdk> =>
  (sdkLoading ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(([s3, storage]) => ({ ...s3, Upload: storage.Upload })));

/** The parts of an SDK or network error that say what went wrong (never the request, never credentials). */
interface FailureShape {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly message?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: unknown };
}

const shapeOf = (e: unknown): FailureShape => (typeof e === 'object' && e !== null ? (e as FailureShape) : {});
const statusOf = (e: unknown): number | undefined => {
  const status = shapeOf(e).$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
};
const nameOf = (e: unknown): string => {
  const { name, code } = shapeOf(e);
  return typeof code === 'string' && code !== '' ? code : typeof name === 'string' ? name : 'Error';
};
/** A missing object: `NoSuchKey` from GET, a bodiless 404 (`NotFound`) from HEAD. A missing bucket is not this. */
const isMissingObject = (e: unknown): boolean => {
  const name = nameOf(e);
  return name === 'NoSuchKey' || name === 'NotFound' || (statusOf(e) === 404 && name !== 'NoSuchBucket');
};
const isRejectedPrecondition = (e: unknown): boolean => statusOf(e) === 412 || nameOf(e) === 'PreconditionFailed' || nameOf(e) === 'ConditionalRequestConflict';

const checkPositiveInteger = (name: string, value: number, min: number): number => {
  if (!Number.isInteger(value) || value < min) {
    throw new StepcacheError('INVALID_OPTIONS', `Invalid option ${name} of the S3 artifact store: got ${String(value)}, expected a whole number of at least ${min}.`, { field: name });
  }
  return value;
};

/** Runs `task` over every item with at most `limit` running at once; results in input order. */
const mapBounded = async <A, B>(items: readonly A[], limit: number, task: (item: A) => Promise<B>): Promise<B[]> => {
  const results = new Array<B>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as A);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
};

// the store

/**
 * An artifact store in an S3 bucket, shared by everyone who points at the same bucket and prefix.
 * Credentials come from the AWS SDK's default chain (environment, shared profile, instance role)
 * unless `clientConfig.credentials` is given, and never appear in messages. Network and permission
 * failures reject with a {@link StepcacheError} of code `STORE_UNAVAILABLE` naming the bucket,
 * prefix and endpoint; a missing or damaged object is a `Left` of `get` (a miss the runner repairs).
 *
 * @example
 * import { createRunner, createS3ArtifactStore } from 'stepcache';
 * const artifacts = createS3ArtifactStore({ bucket: 'ml-team-cache', prefix: 'stepcache', region: 'eu-west-1' });
 * const runner = createRunner({ artifacts });
 */
export const createS3ArtifactStore = (options: S3ArtifactStoreOptions): S3ArtifactStore => {
  const { bucket } = options;
  if (typeof bucket !== 'string' || bucket === '') {
    throw new StepcacheError('INVALID_OPTIONS', 'Invalid option bucket of the S3 artifact store: expected the name of an existing bucket.', { field: 'bucket' });
  }
  const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const partSize = checkPositiveInteger('partSize', options.partSize ?? DEFAULT_PART_SIZE, MIN_PART_SIZE);
  const queueSize = checkPositiveInteger('queueSize', options.queueSize ?? DEFAULT_QUEUE_SIZE, 1);
  const checksInFlight = checkPositiveInteger('checksInFlight', options.checksInFlight ?? DEFAULT_CHECKS_IN_FLIGHT, 1);
  const conditionalWrites = options.conditionalWrites ?? true;
  const hashing = contentHashing(options.secret);
  let made: S3Client | undefined;
  let closed = false;
  let clientLoading: Promise<{ readonly sdk: Sdk; readonly client: S3Client }> | undefined;
  const connect = (): Promise<{ readonly sdk: Sdk; readonly client: S3Client }> =>
    (clientLoading ??= loadSdk().then((sdk) => {
      if (options.client !== undefined) return { sdk, client: options.client };
      made = new sdk.S3Client({
        ...options.clientConfig,
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        ...(options.region === undefined ? {} : { region: options.region }),
        ...(options.forcePathStyle === undefined ? {} : { forcePathStyle: options.forcePathStyle }),
      });
      if (closed) made.destroy();
      return { sdk, client: made };
    }));

  const casPrefix = `${prefix === '' ? '' : `${prefix}/`}cas/`;
  const keyOf = (id: string): string => {
    if (!isArtifactId(id)) throw new Error(`Invalid artifact id ${JSON.stringify(id)}`);
    return `${casPrefix}${id}`;
  };
  const locate = (id: string): string => (id === EMPTY_ARTIFACT_ID ? '(empty)' : `s3://${bucket}/${keyOf(id)}`);
  const where = `s3://${bucket}/${prefix}`;
  /** Ids whose object failed verification here: the next put replaces them instead of trusting what is there. */
  const damaged = new Set<string>();
  /**
   * `id:size` of objects this store wrote, loaded intact or found present: objects are written once
   * under their content hash, so `present` answers these without a request (one round trip per
   * artifact would dominate a cached run). One removed by someone else meanwhile is found missing
   * when loaded, and repaired, as any missing object.
   */
  const seen = new Set<string>();
  const seenKey = (id: string, size: number): string => `${id}:${size}`;

  /** Removes anything credential-like the client holds from a server or network message. */
  const redact = async (text: string): Promise<string> => {
    try {
      const provider = (await connect()).client.config.credentials as unknown;
      const credentials = typeof provider === 'function' ? ((await (provider as () => Promise<unknown>)()) as Record<string, unknown>) : undefined;
      let clean = text;
      for (const field of ['accessKeyId', 'secretAccessKey', 'sessionToken']) {
        const secret = credentials?.[field];
        if (typeof secret === 'string' && secret.length >= 4) clean = clean.split(secret).join('[redacted]');
      }
      return clean;
    } catch {
      return text.replace(/[A-Za-z0-9/+=]{16,}/g, '[redacted]');
    }
  };

  /** Which server the client talks to: the configured endpoint, or the AWS endpoint of its region. */
  const endpointLabel = async (): Promise<string> => {
    try {
      const { client } = await connect();
      const endpoint = await client.config.endpoint?.();
      if (endpoint !== undefined) return `${endpoint.protocol}//${endpoint.hostname}${endpoint.port === undefined ? '' : `:${endpoint.port}`}${endpoint.path === '/' ? '' : endpoint.path}`;
      return `the AWS endpoint of region ${await client.config.region()}`;
    } catch {
      return 'the default AWS endpoint';
    }
  };

  const hintFor = (e: unknown): string => {
    const status = statusOf(e);
    if (status === 403 || status === 401) return 'The server denied access: check that the credentials (from the environment, the AWS profile or clientConfig) may read and write this bucket.';
    if (nameOf(e) === 'NoSuchBucket') return 'The bucket does not exist: create it, or point the store at one that does.';
    return 'Check that the endpoint is reachable, that the bucket exists and that the credentials (from the environment, the AWS profile or clientConfig) allow it.';
  };

  const unavailable = async (action: string, e: unknown): Promise<StepcacheError> => {
    const status = statusOf(e);
    const { message } = shapeOf(e);
    const detail = typeof message === 'string' && message !== '' && message !== 'UnknownError' ? `: ${await redact(message)}` : '';
    return new StepcacheError(
      'STORE_UNAVAILABLE',
      `The S3 artifact store ${where} at ${await endpointLabel()} could not ${action} (${nameOf(e)}${status === undefined ? '' : `, HTTP ${status}`}${detail}). ${hintFor(e)}`,
    );
  };

  /** The size and recorded content hash of an object, or undefined when there is none. */
  const head = async (id: string): Promise<{ readonly size: number; readonly contentHash: string | undefined } | undefined> => {
    const { sdk, client } = await connect();
    try {
      const found = await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: keyOf(id) }));
      return { size: found.ContentLength ?? -1, contentHash: found.Metadata?.[CONTENT_HASH_META] };
    } catch (e) {
      if (isMissingObject(e)) return undefined;
      throw await unavailable(`check ${locate(id)}`, e);
    }
  };

  const put = async (bytes: Uint8Array): Promise<string> => {
    if (bytes.byteLength === 0) return EMPTY_ARTIFACT_ID;
    const hasher = await hashing.create();
    hasher.update(bytes);
    const id = hasher.digest();
    // An object that failed verification here is replaced without asking; otherwise an intact one is kept.
    const replace = damaged.has(id);
    const existing = replace ? undefined : await head(id);
    if (existing !== undefined && existing.size === bytes.byteLength && existing.contentHash === id) return id;
    const overwrite = replace || existing !== undefined;
    const { sdk, client } = await connect();
    const upload = new sdk.Upload({
      client,
      partSize,
      queueSize,
      leavePartsOnError: false,
      params: {
        Bucket: bucket,
        Key: keyOf(id),
        Body: bytes, // sliced in parts by the uploader, never copied
        ContentLength: bytes.byteLength,
        ContentType: 'application/octet-stream',
        Metadata: { [CONTENT_HASH_META]: id },
        ...(conditionalWrites && !overwrite ? { IfNoneMatch: '*' } : {}),
      },
    });
    try {
      await upload.done();
    } catch (e) {
      if (!(conditionalWrites && !overwrite && isRejectedPrecondition(e))) throw await unavailable(`write ${locate(id)}`, e);
      // someone else wrote the same content first: theirs is ours
    }
    damaged.delete(id);
    seen.add(seenKey(id, bytes.byteLength));
    return id;
  };

  const get = async (ref: ArtifactRef): Promise<E.Either<ArtifactLoadError, Buffer>> => {
    if (ref.id === EMPTY_ARTIFACT_ID) return E.right(Buffer.alloc(0));
    if (!isArtifactId(ref.id)) return E.left({ _tag: 'ArtifactUnreadable', id: ref.id, location: '(invalid id)', message: 'has an invalid id: artifact ids are hexadecimal content hashes' });
    const location = locate(ref.id);
    const fail = (tag: ArtifactLoadError['_tag'], message: string): E.Either<ArtifactLoadError, Buffer> => {
      damaged.add(ref.id);
      seen.delete(seenKey(ref.id, ref.size));
      return E.left({ _tag: tag, id: ref.id, location, message });
    };
    if (!madeBy(hashing, ref.id)) return E.left({ _tag: 'ArtifactMissing', id: ref.id, location, message: otherHashingMessage(hashing, ref.id) });
    const { sdk, client } = await connect();
    let body: AsyncIterable<Uint8Array> & { destroy?: () => void };
    let length: number | undefined;
    try {
      const response = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: keyOf(ref.id) }));
      body = response.Body as unknown as typeof body;
      length = response.ContentLength;
    } catch (e) {
      if (isMissingObject(e)) {
        seen.delete(seenKey(ref.id, ref.size));
        return fail('ArtifactMissing', 'object is missing');
      }
      throw await unavailable(`read ${location}`, e);
    }
    const stop = (): void => body.destroy?.();
    if (length !== undefined && length !== ref.size) {
      stop();
      return fail(length < ref.size ? 'ArtifactTruncated' : 'ArtifactCorrupted', `has ${length} bytes, expected ${ref.size}`);
    }
    const hasher = await hashing.create();
    const buffer = Buffer.allocUnsafeSlow(ref.size);
    let filled = 0;
    try {
      for await (const chunk of body) {
        if (filled + chunk.byteLength > ref.size) {
          stop();
          return fail('ArtifactCorrupted', `has more than the ${ref.size} bytes expected`);
        }
        buffer.set(chunk, filled);
        hasher.update(chunk);
        filled += chunk.byteLength;
      }
    } catch (e) {
      throw await unavailable(`read ${location}`, e);
    }
    if (filled < ref.size) return fail('ArtifactTruncated', `ended after ${filled} of ${ref.size} bytes`);
    const actual = hasher.digest();
    if (actual !== ref.id) return fail('ArtifactCorrupted', `content hash is ${actual}, expected ${ref.id}`);
    damaged.delete(ref.id);
    seen.add(seenKey(ref.id, ref.size));
    return E.right(buffer);
  };

  const present = (refs: readonly ArtifactRef[]): Promise<boolean[]> =>
    mapBounded(refs, checksInFlight, async (ref) => {
      if (ref.id === EMPTY_ARTIFACT_ID) return true;
      if (!isArtifactId(ref.id) || !madeBy(hashing, ref.id) || damaged.has(ref.id)) return false;
      if (seen.has(seenKey(ref.id, ref.size))) return true;
      const found = await head(ref.id);
      const intact = found !== undefined && found.size === ref.size;
      if (intact) seen.add(seenKey(ref.id, ref.size));
      return intact;
    });

  const remove = async (id: string): Promise<void> => {
    if (id === EMPTY_ARTIFACT_ID) return;
    const key = keyOf(id); // an invalid id is a caller's bug: keyOf rejects it
    for (const k of seen) if (k.startsWith(`${id}:`)) seen.delete(k);
    const { sdk, client } = await connect();
    try {
      await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (e) {
      if (!isMissingObject(e)) throw await unavailable(`remove ${locate(id)}`, e);
    }
  };

  const list = async (): Promise<Array<{ readonly id: string; readonly size: number; readonly writtenAt: number }>> => {
    const found: Array<{ readonly id: string; readonly size: number; readonly writtenAt: number }> = [];
    const { sdk, client } = await connect();
    try {
      for await (const page of sdk.paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: casPrefix })) {
        for (const object of page.Contents ?? []) {
          const id = object.Key?.slice(casPrefix.length) ?? '';
          if (isArtifactId(id)) found.push({ id, size: object.Size ?? 0, writtenAt: object.LastModified?.getTime() ?? 0 });
        }
      }
    } catch (e) {
      throw await unavailable('list its objects', e);
    }
    return found;
  };

  /** The temporary files of an object store are the parts of unfinished multipart uploads. */
  const sweepTemporary = async (olderThanMs: number): Promise<number> => {
    let removed = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    const { sdk, client } = await connect();
    try {
      for (;;) {
        const page = await client.send(
          new sdk.ListMultipartUploadsCommand({ Bucket: bucket, Prefix: casPrefix, ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }), ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker }) }),
        );
        for (const upload of page.Uploads ?? []) {
          const startedAt = upload.Initiated?.getTime();
          if (upload.Key === undefined || upload.UploadId === undefined || startedAt === undefined || Date.now() - startedAt <= olderThanMs) continue;
          await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
          removed++;
        }
        if (page.IsTruncated !== true) return removed;
        keyMarker = page.NextKeyMarker;
        uploadIdMarker = page.NextUploadIdMarker;
      }
    } catch (e) {
      if (nameOf(e) === 'NotImplemented' || statusOf(e) === 501) return removed; // a server without multipart listing keeps no parts we could sweep
      throw await unavailable('sweep unfinished uploads', e);
    }
  };

  return Object.freeze({
    put,
    // Small outputs kept inside their cache entries are named by it and never reach the bucket.
    idOf: artifactIdOf(hashing),
    get,
    present,
    remove,
    list,
    sweepTemporary,
    locate,
    close: () => {
      closed = true;
      made?.destroy(); // a client passed in is left to its owner
    },
  });
};
