import { randomBytes, randomUUID } from 'node:crypto';
import * as net from 'node:net';
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import * as E from 'fp-ts/Either';
import { createRunner, createS3ArtifactStore, pipeline, step, StepcacheError, type Runner, type S3ArtifactStore, type S3ArtifactStoreOptions } from '../src';
import { artifactStoreContract } from './contract/artifact-store.contract';
import { keyedContentHashing } from '../src/hash/hashers';
import { collectingLogger, rejection, storePerTest } from './support/fixtures';
import { provideS3Server, type S3Server } from './support/provision/s3';

let server: S3Server;
let raw: S3Client;
const opened: S3ArtifactStore[] = [];

beforeAll(async () => {
  server = await provideS3Server();
  raw = new S3Client(server.clientConfig);
}, 60_000);

afterAll(async () => {
  raw.destroy();
  await server.stop();
});

afterEach(() => {
  for (const store of opened.splice(0)) store.close();
});

/** A store on the test server under a prefix of its own. */
const storeAt = (prefix: string, options: Partial<S3ArtifactStoreOptions> = {}): S3ArtifactStore => {
  const store = createS3ArtifactStore({ bucket: server.bucket, prefix, clientConfig: server.clientConfig, ...options });
  opened.push(store);
  return store;
};
const freshPrefix = (): string => `test/${randomUUID()}`;

/** The keys under a prefix, as the server lists them. */
const keysUnder = async (prefix: string): Promise<string[]> => {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await raw.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: `${prefix}/`, ...(token === undefined ? {} : { ContinuationToken: token }) }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key ?? ''));
    token = page.NextContinuationToken;
  } while (token !== undefined);
  return keys.sort();
};

const overwriteObject = async (key: string, bytes: Uint8Array): Promise<void> => {
  await raw.send(new PutObjectCommand({ Bucket: server.bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength }));
};

/** An S3 store under a new prefix, with what the contract needs to damage and count its objects. */
const s3Subject = async (options: { readonly secret?: string } = {}) => {
  const prefix = freshPrefix();
  const store = createS3ArtifactStore({ bucket: server.bucket, prefix, clientConfig: server.clientConfig, ...options });
  return {
    store,
    overwrite: (id: string, bytes: Uint8Array) => overwriteObject(`${prefix}/cas/${id}`, bytes),
    erase: async (id: string) => void (await raw.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: `${prefix}/cas/${id}` }))),
    count: async () => (await keysUnder(prefix)).length,
    dispose: async () => store.close(),
  };
};

artifactStoreContract('the S3 store', () => s3Subject());

artifactStoreContract(
  'the S3 store with a secret (keyed ids)',
  () => s3Subject({ secret: 'team-secret' }),
  keyedContentHashing('team-secret'),
);

/** A client that records the name of every command it sends (the real client, observed). */
const observedClient = (): { readonly client: S3Client; readonly sent: string[] } => {
  const client = new S3Client(server.clientConfig);
  const sent: string[] = [];
  client.middlewareStack.add(
    (next, context) => (args) => {
      sent.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize', name: 'recordCommandNames' },
  );
  return { client, sent };
};

describe('objects in the bucket', () => {
  it('live at <prefix>/cas/<id>, whatever slashes surround the prefix, and locate names them', async () => {
    const prefix = freshPrefix();
    const store = storeAt(`/${prefix}/`);
    const id = await store.put(Buffer.from('where does it go'));
    expect(await keysUnder(prefix)).toEqual([`${prefix}/cas/${id}`]);
    expect(store.locate(id)).toBe(`s3://${server.bucket}/${prefix}/cas/${id}`);
  });

  it('two prefixes in one bucket are two stores', async () => {
    const a = storeAt(freshPrefix());
    const b = storeAt(freshPrefix());
    const id = await a.put(Buffer.from('only in a'));
    expect(await b.present([{ id, size: 9 }])).toEqual([false]);
    expect(await b.list()).toEqual([]);
  });

  it('a colleague on another machine (another store on the same bucket and prefix) reads what was stored', async () => {
    const prefix = freshPrefix();
    const bytes = randomBytes(10_000);
    const id = await storeAt(prefix).put(bytes);
    const r = await storeAt(prefix).get({ id, size: bytes.length });
    expect(E.isRight(r) && r.right.equals(bytes)).toBe(true);
  });
});

describe('writing once', () => {
  it('a second put of the same bytes only asks whether the object is there', async () => {
    const { client, sent } = observedClient();
    try {
      const store = storeAt(freshPrefix(), { client });
      const bytes = randomBytes(1000);
      await store.put(bytes);
      expect(sent).toEqual(['HeadObjectCommand', 'PutObjectCommand']);
      sent.length = 0;
      await store.put(bytes);
      expect(sent).toEqual(['HeadObjectCommand']);
    } finally {
      client.destroy();
    }
  });

  it('an artifact larger than a part is uploaded in parts of partSize', async () => {
    const { client, sent } = observedClient();
    try {
      const store = storeAt(freshPrefix(), { client, partSize: 5 * 1024 * 1024, queueSize: 2 });
      const bytes = randomBytes(12 * 1024 * 1024);
      const id = await store.put(bytes);
      expect(sent.filter((c) => c === 'UploadPartCommand')).toHaveLength(3);
      expect(sent).toContain('CreateMultipartUploadCommand');
      expect(sent).toContain('CompleteMultipartUploadCommand');
      const r = await store.get({ id, size: bytes.length });
      expect(E.isRight(r) && r.right.equals(bytes)).toBe(true);
    } finally {
      client.destroy();
    }
  });

  it('another store replaces an object someone overwrote behind its back, though the size is right', async () => {
    const prefix = freshPrefix();
    const bytes = randomBytes(2048);
    const id = await storeAt(prefix).put(bytes);
    await overwriteObject(`${prefix}/cas/${id}`, randomBytes(2048));
    const other = storeAt(prefix);
    expect(await other.put(bytes)).toBe(id);
    const r = await other.get({ id, size: bytes.length });
    expect(E.isRight(r) && r.right.equals(bytes)).toBe(true);
  });

  it('after a failed verification, present is false until the artifact is stored again', async () => {
    const prefix = freshPrefix();
    const store = storeAt(prefix);
    const bytes = randomBytes(512);
    const id = await store.put(bytes);
    await overwriteObject(`${prefix}/cas/${id}`, randomBytes(512));
    expect(await store.present([{ id, size: 512 }])).toEqual([true]); // the size alone cannot tell
    expect(E.isLeft(await store.get({ id, size: 512 }))).toBe(true);
    expect(await store.present([{ id, size: 512 }])).toEqual([false]);
    await store.put(bytes);
    expect(await store.present([{ id, size: 512 }])).toEqual([true]);
  });
});

describe('present', () => {
  it('checks objects in parallel, never more at once than checksInFlight', async () => {
    const client = new S3Client(server.clientConfig);
    let inFlight = 0;
    let most = 0;
    client.middlewareStack.add(
      (next) => async (args) => {
        most = Math.max(most, ++inFlight);
        try {
          return await next(args);
        } finally {
          inFlight--;
        }
      },
      { step: 'initialize', name: 'countChecksInFlight' },
    );
    try {
      const store = storeAt(freshPrefix(), { client, checksInFlight: 3 });
      const refs = Array.from({ length: 20 }, (_, i) => ({ id: `${i.toString(16).padStart(2, '0')}${'0'.repeat(30)}`, size: 1 }));
      expect(await store.present(refs)).toEqual(refs.map(() => false));
      expect(most).toBe(3);
    } finally {
      client.destroy();
    }
  });
});

describe('options', () => {
  it.each([
    [{ partSize: 1024 }, 'partSize'],
    [{ queueSize: 0 }, 'queueSize'],
    [{ checksInFlight: 1.5 }, 'checksInFlight'],
    [{ bucket: '' }, 'bucket'],
  ] as const)('%p is rejected with INVALID_OPTIONS naming the field', (bad, field) => {
    let thrown: unknown;
    try {
      createS3ArtifactStore({ bucket: 'b', ...bad });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(StepcacheError);
    expect(thrown).toMatchObject({ code: 'INVALID_OPTIONS', field });
  });
});

describe('an unavailable store', () => {
  it('wrong credentials: every operation rejects with STORE_UNAVAILABLE naming bucket, prefix and endpoint, never the credentials', async () => {
    const credentials = { accessKeyId: 'AKIAWRONGWRONGWRONG1', secretAccessKey: 'wrong-secret-key-do-not-print-me-0123456789' };
    const prefix = freshPrefix();
    const store = storeAt(prefix, { clientConfig: { ...server.clientConfig, credentials, maxAttempts: 1 } });
    const ref = { id: '0123456789abcdef0123456789abcdef', size: 3 };
    const errors = await Promise.all([
      rejection(store.put(Buffer.from('abc'))),
      rejection(store.get(ref)),
      rejection(store.present([ref])),
      rejection(store.list()),
      rejection(store.remove(ref.id)),
    ]);
    for (const e of errors) {
      expect(e.code).toBe('STORE_UNAVAILABLE');
      expect(e.message).toContain(server.bucket);
      expect(e.message).toContain(prefix);
      expect(e.message).toContain(server.endpoint);
      expect(e.message).toMatch(/HTTP 403/);
      expect(`${e.message} ${e.stack ?? ''}`).not.toContain(credentials.secretAccessKey);
      expect(`${e.message} ${e.stack ?? ''}`).not.toContain(credentials.accessKeyId);
    }
  });

  it('an endpoint nobody listens on: every operation rejects with STORE_UNAVAILABLE naming the endpoint', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const address = probe.address() as net.AddressInfo;
        probe.close(() => resolve(address.port));
      });
    });
    const endpoint = `http://127.0.0.1:${port}`;
    const store = storeAt('p', { endpoint, clientConfig: { ...server.clientConfig, endpoint, maxAttempts: 1 } });
    const ref = { id: '0123456789abcdef0123456789abcdef', size: 1 };
    const errors = [
      await rejection(store.put(Buffer.from('x'))),
      await rejection(store.get(ref)),
      await rejection(store.present([ref])),
      await rejection(store.list()),
      await rejection(store.remove(ref.id)),
    ];
    for (const e of errors) {
      expect(e.code).toBe('STORE_UNAVAILABLE');
      expect(e.message).toContain(endpoint);
      expect(e.message).toContain('ECONNREFUSED');
    }
  });

  it('a bucket that does not exist: put rejects with STORE_UNAVAILABLE naming it', async () => {
    const store = createS3ArtifactStore({ bucket: 'no-such-bucket-here', prefix: 'p', clientConfig: { ...server.clientConfig, maxAttempts: 1 } });
    opened.push(store);
    const e = await rejection(store.put(Buffer.from('nowhere')));
    expect(e.code).toBe('STORE_UNAVAILABLE');
    expect(e.message).toContain('s3://no-such-bucket-here/p');
  });
});

describe('what the store has seen', () => {
  it('present answers objects this store wrote, loaded or found without asking the server again', async () => {
    const { client, sent } = observedClient();
    try {
      const prefix = freshPrefix();
      const writer = storeAt(prefix, { client });
      const bytes = randomBytes(300);
      const id = await writer.put(bytes);
      sent.length = 0;
      expect(await writer.present([{ id, size: 300 }])).toEqual([true]);
      expect(sent).toEqual([]);
      expect(await writer.present([{ id, size: 299 }])).toEqual([false]); // another size is another question
      expect(sent).toEqual(['HeadObjectCommand']);

      const reader = storeAt(prefix, { client });
      sent.length = 0;
      expect(await reader.present([{ id, size: 300 }])).toEqual([true]);
      expect(await reader.present([{ id, size: 300 }])).toEqual([true]);
      expect(sent).toEqual(['HeadObjectCommand']);
    } finally {
      client.destroy();
    }
  });

  it('an object deleted behind its back is missing when loaded, and asked about again afterwards', async () => {
    const prefix = freshPrefix();
    const store = storeAt(prefix);
    const id = await store.put(randomBytes(100));
    await raw.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: `${prefix}/cas/${id}` }));
    const loaded = await store.get({ id, size: 100 });
    expect(E.isLeft(loaded) && loaded.left._tag).toBe('ArtifactMissing');
    expect(await store.present([{ id, size: 100 }])).toEqual([false]);
  });

  it('an object it removed is not present any more', async () => {
    const store = storeAt(freshPrefix());
    const id = await store.put(randomBytes(100));
    await store.remove(id);
    expect(await store.present([{ id, size: 100 }])).toEqual([false]);
  });
});

describe('a runner on the S3 store', () => {
  const store = storePerTest();

  const calls = { load: 0, scale: 0 };
  const load = step(function load_rows() {
    calls.load++;
    return [1, 2, 3];
  });
  const scale = step(function scale_rows({ rows, factor }: { rows: number[]; factor: number }) {
    calls.scale++;
    return rows.map((r) => r * factor);
  });
  const scaled = pipeline('scaled', (p, { factor = 10 }: { factor?: number }) => ({ result: p.call(scale, { rows: p.call(load), factor }) }));

  /** A runner on the bucket; tiny outputs are objects too unless `inline` (as they are by default: kept inside their entries). */
  const runnerOn = (prefix: string, logger = collectingLogger(), options: { readonly inline?: boolean } = {}): Runner => {
    const { idOf, ...objects } = storeAt(prefix);
    const r = createRunner({ dir: store.dir(), logger, artifacts: options.inline === true ? { ...objects, idOf } : objects });
    store.keep(r);
    return r;
  };

  beforeEach(() => {
    calls.load = 0;
    calls.scale = 0;
  });

  it('serves unchanged steps from the bucket on the next run', async () => {
    const prefix = freshPrefix();
    await runnerOn(prefix).run(scaled);
    const again = await runnerOn(prefix).run(scaled);
    expect(again.steps.load_rows?.status).toBe('cached');
    expect(again.steps.scale_rows?.status).toBe('cached');
    expect(await again.output('result')).toEqual([10, 20, 30]);
    expect(calls).toEqual({ load: 1, scale: 1 });
  });

  it('tiny outputs never reach the bucket: they are kept inside their entries, and served from them', async () => {
    const prefix = freshPrefix();
    const first = await runnerOn(prefix, collectingLogger(), { inline: true }).run(scaled);
    for (const s of Object.values(first.steps)) for (const d of Object.values(s.outputs ?? {})) expect(d.inline).toEqual(expect.any(String));
    expect(await keysUnder(prefix)).toEqual([]);
    const again = await runnerOn(prefix, collectingLogger(), { inline: true }).run(scaled);
    expect(again.steps.scale_rows?.status).toBe('cached');
    expect(await again.output('result')).toEqual([10, 20, 30]);
    expect(calls).toEqual({ load: 1, scale: 1 });
  });

  it('an artifact deleted from the bucket is never a hit: the step runs again and its object is back', async () => {
    const prefix = freshPrefix();
    const first = await runnerOn(prefix).run(scaled);
    const id = Object.values(first.steps.scale_rows?.outputs ?? {})[0]?.id;
    expect(id).toBeDefined();
    await raw.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: `${prefix}/cas/${String(id)}` }));
    const again = await runnerOn(prefix).run(scaled);
    expect(again.steps.scale_rows?.status).toBe('executed');
    expect(await again.output('result')).toEqual([10, 20, 30]);
    expect(await keysUnder(prefix)).toContain(`${prefix}/cas/${String(id)}`);
  });

  it('the same runner repairs an output whose object was deleted after it saw it', async () => {
    const prefix = freshPrefix();
    const runner = runnerOn(prefix);
    const first = await runner.run(scaled);
    const id = Object.values(first.steps.scale_rows?.outputs ?? {})[0]?.id;
    await raw.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: `${prefix}/cas/${String(id)}` }));
    const again = await runner.run(scaled);
    expect(await again.output('result')).toEqual([10, 20, 30]);
    expect(await keysUnder(prefix)).toContain(`${prefix}/cas/${String(id)}`);
  });

  it('an upstream artifact overwritten in the bucket is repaired: a warning names the step, the step and its downstream re-run', async () => {
    const prefix = freshPrefix();
    const first = await runnerOn(prefix).run(scaled);
    const loaded = Object.values(first.steps.load_rows?.outputs ?? {})[0];
    expect(loaded).toBeDefined();
    await overwriteObject(`${prefix}/cas/${String(loaded?.id)}`, Buffer.from('[9,9,9]')); // same size, other content
    const log = collectingLogger();
    const again = await runnerOn(prefix, log).run(scaled, { factor: 100 }); // scale_rows re-runs and needs the rows
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toContain('load_rows');
    expect(log.warnings[0]).toContain(`${prefix}/cas/${String(loaded?.id)}`);
    expect(calls.load).toBe(2);
    expect(await again.output('result')).toEqual([100, 200, 300]);
  });
});
