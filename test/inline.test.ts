/**
 * Outputs kept inside their cache entry (src/store/inline.ts): tiny outputs of every kind round
 * trip through the entry and never become files, big ones still do; inline bytes are checked
 * against their id on every load (a damaged row is repaired, never a wrong value), present
 * without asking the store, and stores written before (every output a file) still load.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import * as E from 'fp-ts/Either';
import * as t from 'io-ts';
import { createFileArtifactStore, createRunner, createSqliteMetadataStore, pipeline, silentLogger, step, type ArtifactDescriptor, type ArtifactStore, type Runner } from '../src';
import { examineStore } from '../src/cache/doctor';
import { artifactsPresent, INLINE_MAX_BYTES, inlineForm, inlinePresence, keptInline, loadArtifact, locateArtifact, storedArtifacts } from '../src/store/inline';
import { deserializeOutput, serializeOutput } from '../src/store/serialize';
import { collectingLogger, filesBelow, filesOnly, storePerTest } from './support/fixtures';

const store = storePerTest();
const runnerOf = (options: Parameters<typeof createRunner>[0] = {}): Runner => store.keep(createRunner({ dir: store.dir(), logger: silentLogger, ...options }));
const artifactsDir = (): string => path.join(store.dir(), 'artifacts');
const artifactFiles = (): string[] => filesBelow(artifactsDir()).filter((f) => !f.startsWith('tmp'));

/** A descriptor of bytes as the in-process executor makes it when it keeps them inside the entry. */
const inlineDescriptor = async (artifacts: ArtifactStore, bytes: Uint8Array, kind: ArtifactDescriptor['kind'] = 'json'): Promise<ArtifactDescriptor> => ({
  id: await (artifacts.idOf as NonNullable<ArtifactStore['idOf']>)(bytes),
  kind,
  size: bytes.byteLength,
  format: 'auto',
  inline: inlineForm(bytes),
});

/** A base64 text with its first character changed to another that keeps it canonical: other bytes of the same length. */
const flipFirst = (base64: string): string => (base64[0] === 'A' ? 'B' : 'A') + base64.slice(1);

/** Every row of the store's entry for `key` (own, latest of pipeline and step) holds `entry`, as if written so. */
const rewriteEntry = async (key: string, change: (d: ArtifactDescriptor) => ArtifactDescriptor): Promise<void> => {
  const metadata = createSqliteMetadataStore(path.join(store.dir(), 'metadata.sqlite'));
  try {
    const [entry] = await metadata.getEntries([key]);
    if (entry === undefined) throw new Error(`no entry ${key}`);
    const outputs = Object.fromEntries(Object.entries(entry.outputs).map(([name, d]) => [name, change(d)]));
    await metadata.putEntry({ ...entry, outputs }, { replace: true });
  } finally {
    await metadata.close();
  }
};

// the values of every kind that can be tiny

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}
const PointCodec = new t.Type<Point, { x: number; y: number }>(
  'Point',
  (u): u is Point => u instanceof Point,
  (u, c) => (typeof u === 'object' && u !== null && typeof (u as { x?: unknown }).x === 'number' && typeof (u as { y?: unknown }).y === 'number' ? t.success(new Point((u as Point).x, (u as Point).y)) : t.failure(u, c)),
  (p) => ({ x: p.x, y: p.y }),
);

const tinyValues = step(function tiny_values() {
  return {
    json: { name: 'svc', scores: [0.5, 1, null], nested: { ok: true } },
    text: 'accuracy 0.97',
    number: 42,
    floats: new Float64Array([1.5, -0, NaN, Infinity]),
    ints: new Int32Array([-1, 2, 3]),
    buffer: Buffer.from('raw bytes'),
    arrayBuffer: new Uint8Array([9, 8, 7]).buffer,
    point: new Point(3, 4),
  };
}).outputs({ json: 'auto', text: 'auto', number: 'auto', floats: 'auto', ints: 'auto', buffer: 'auto', arrayBuffer: 'auto', point: PointCodec });
const tinyPipeline = pipeline('tiny_values', (p) => p.call(tinyValues));

type TinyName = 'json' | 'text' | 'number' | 'floats' | 'ints' | 'buffer' | 'arrayBuffer' | 'point';

const expectTinyValues = async (outputOf: (name: TinyName) => Promise<unknown>): Promise<void> => {
  expect(await outputOf('json')).toEqual({ name: 'svc', scores: [0.5, 1, null], nested: { ok: true } });
  expect(await outputOf('text')).toBe('accuracy 0.97');
  expect(await outputOf('number')).toBe(42);
  const floats = (await outputOf('floats')) as Float64Array;
  expect(floats).toBeInstanceOf(Float64Array);
  expect(Array.from(floats)).toEqual([1.5, -0, NaN, Infinity]);
  expect(Object.is(floats[1], -0)).toBe(true);
  expect(await outputOf('ints')).toEqual(new Int32Array([-1, 2, 3]));
  const buffer = await outputOf('buffer');
  expect(Buffer.isBuffer(buffer) && buffer.toString()).toBe('raw bytes');
  const arrayBuffer = await outputOf('arrayBuffer');
  expect(arrayBuffer).toBeInstanceOf(ArrayBuffer);
  expect(new Uint8Array(arrayBuffer as ArrayBuffer)).toEqual(new Uint8Array([9, 8, 7]));
  const point = await outputOf('point');
  expect(point).toBeInstanceOf(Point);
  expect(point).toEqual(new Point(3, 4));
};

describe('tiny outputs kept inside their entry', () => {
  it('round trip for every kind (JSON, text, numbers, typed arrays, Buffer, ArrayBuffer, codec outputs), and no file is made', async () => {
    const first = await runnerOf().run(tinyPipeline);
    const outputs = first.steps.tiny_values?.outputs ?? {};
    expect(Object.keys(outputs)).toHaveLength(8);
    for (const d of Object.values(outputs)) expect(d.inline).toEqual(expect.any(String));
    expect(outputs['floats']).toMatchObject({ kind: 'bytes', dtype: 'Float64Array', size: 32 });
    expect(outputs['point']).toMatchObject({ kind: 'json', format: 'codec:Point' });
    expect(artifactFiles()).toEqual([]);
    await expectTinyValues((name) => first.output(name));
    // A later process: nothing handed over, everything read from the entry.
    const again = await runnerOf().run(tinyPipeline);
    expect(again.steps.tiny_values?.status).toBe('cached');
    await expectTinyValues((name) => again.output(name));
    expect(artifactFiles()).toEqual([]);
  });

  it('keeps the id a file of the same bytes would have', async () => {
    const run = await runnerOf().run(tinyPipeline);
    const files = createFileArtifactStore(artifactsDir());
    for (const d of Object.values(run.steps.tiny_values?.outputs ?? {})) {
      expect(await files.put(Buffer.from(d.inline as string, 'base64'))).toBe(d.id);
    }
  });

  it('keeps outputs up to INLINE_MAX_BYTES inline; one byte more is a file', async () => {
    const sized = step(function sized({ n }: { n: number }) {
      return Buffer.alloc(n, 7);
    });
    const p = pipeline('sized', (p, { n }: { n: number }) => ({ result: p.call(sized, { n }) }));
    const runner = runnerOf();
    const atLimit = await runner.run(p, { n: INLINE_MAX_BYTES });
    expect(atLimit.steps.sized?.outputs?.['output']?.inline).toBeDefined();
    expect(artifactFiles()).toEqual([]);
    const over = await runner.run(p, { n: INLINE_MAX_BYTES + 1 });
    const file = over.steps.sized?.outputs?.['output'];
    expect(file?.inline).toBeUndefined();
    expect(artifactFiles()).toEqual([path.join(file?.id.slice(0, 2) ?? '', file?.id ?? '')]);
    expect(await (await runnerOf().run(p, { n: INLINE_MAX_BYTES + 1 })).output('result')).toEqual(Buffer.alloc(INLINE_MAX_BYTES + 1, 7));
  });

  it('a damaged inline row (one base64 character changed) is a miss with a reason: the step executes again and the value is right', async () => {
    let sources = 0;
    const source = step(function inline_source() {
      sources++;
      return { weights: [1, 2, 3] };
    });
    const scale = step(function inline_scale({ model, k }: { model: { weights: number[] }; k: number }) {
      return model.weights.map((w) => w * k);
    });
    const p = pipeline('inline_damage', (p, { k }: { k: number }) => ({ result: p.call(scale, { model: p.call(source), k }) }));
    const first = await runnerOf().run(p, { k: 1 });
    await rewriteEntry(first.steps.inline_source?.key as string, (d) => ({ ...d, inline: flipFirst(d.inline as string) }));
    const logger = collectingLogger();
    const run = await runnerOf({ logger }).run(p, { k: 2 });
    expect(sources).toBe(2);
    expect(run.steps.inline_source?.status).toBe('executed');
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toContain('inline_source');
    expect(logger.warnings[0]).toMatch(/content hash is [0-9a-f]{32}, expected [0-9a-f]{32} \(the entry is damaged\)/);
    expect(logger.warnings[0]).toContain('(inside its cache entry)');
    expect(await run.output('result')).toEqual([2, 4, 6]);
    expect(artifactFiles()).toEqual([]);
  });

  it('an inline row whose bytes are not of their recorded size is no hit: the step executes', async () => {
    let calls = 0;
    const s = step(function inline_sized() {
      calls++;
      return 'twelve chars';
    });
    const p = pipeline('inline_size', (p) => ({ result: p.call(s) }));
    const first = await runnerOf().run(p);
    await rewriteEntry(first.steps.inline_sized?.key as string, (d) => ({ ...d, inline: inlineForm(Buffer.from('"other"')) }));
    const run = await runnerOf().run(p);
    expect(run.steps.inline_sized?.status).toBe('executed');
    expect(calls).toBe(2);
    expect(await run.output('result')).toBe('twelve chars');
  });

  it('a store written before, every output a file (descriptors without inline), still loads, and its files are used', async () => {
    const before = await runnerOf({ artifacts: filesOnly(store.dir()) }).run(tinyPipeline);
    for (const d of Object.values(before.steps.tiny_values?.outputs ?? {})) expect(d.inline).toBeUndefined();
    const files = artifactFiles();
    expect(files).toHaveLength(8);
    const now = await runnerOf().run(tinyPipeline);
    expect(now.steps.tiny_values?.status).toBe('cached');
    await expectTinyValues((name) => now.output(name));
    expect(artifactFiles()).toEqual(files);
  });

  it('cache ls, prune, clear and doctor see inline outputs as whole, never as missing files', async () => {
    const big = step(function inline_big() {
      return new Float64Array(1000).fill(1);
    });
    const sum = step(function inline_sum({ xs }: { xs: Float64Array }) {
      return xs.reduce((a, b) => a + b, 0);
    });
    const p = pipeline('inline_admin', (p) => ({ result: p.call(sum, { xs: p.call(big) }) }));
    const runner = runnerOf();
    await runner.run(p);
    await runner.run(tinyPipeline);
    const listed = await runner.cache.list();
    expect(listed.map((e) => [e.step, e.bytes]).sort()).toEqual([['inline_big', 8000], ['inline_sum', 4], ['tiny_values', expect.any(Number)]]);
    const metadata = createSqliteMetadataStore(path.join(store.dir(), 'metadata.sqlite'));
    try {
      const report = await examineStore(metadata, createFileArtifactStore(artifactsDir()), { repair: false });
      expect(report).toMatchObject({ broken: [], damaged: [], entriesChecked: 3 });
    } finally {
      await metadata.close();
    }
    // Collection keeps the one file an entry needs, and counts only files as artifacts.
    expect(await runner.cache.prune({ step: 'tiny_values', graceMs: 0 })).toEqual({ entries: 1, artifacts: 0, bytes: 0, remainingBytes: 8000 });
    expect(artifactFiles()).toHaveLength(1);
    expect((await runner.run(p)).steps.inline_sum?.status).toBe('cached');
    expect(await runner.cache.clear()).toEqual({ entries: 2, artifacts: 1, bytes: 8000, remainingBytes: 0 });
    expect(artifactFiles()).toEqual([]);
    const rerun = await runner.run(p);
    expect(rerun.steps.inline_sum?.status).toBe('executed');
    expect(await rerun.output('result')).toBe(1000);
  });
});

describe('loading and presence of inline bytes', () => {
  const bytes = Buffer.from('{"a":1}');

  it('loads the bytes from the descriptor, checked against their id, without the store', async () => {
    const files = createFileArtifactStore(artifactsDir());
    const d = await inlineDescriptor(files, bytes);
    const gets: string[] = [];
    const watched: ArtifactStore = { ...files, get: (ref) => (gets.push(ref.id), files.get(ref)) };
    expect(await loadArtifact(watched, d)).toEqual(E.right(bytes));
    expect(gets).toEqual([]);
  });

  it('refuses bytes of another content, another size, or base64 that is not canonical, naming the entry', async () => {
    const files = createFileArtifactStore(artifactsDir());
    const d = await inlineDescriptor(files, bytes);
    const changed = await loadArtifact(files, { ...d, inline: flipFirst(d.inline as string) });
    expect(changed).toEqual(E.left(expect.objectContaining({ _tag: 'ArtifactCorrupted', id: d.id, location: `(inside its cache entry) ${d.id}` })));
    expect(E.isLeft(changed) && changed.left.message).toMatch(/^content hash is [0-9a-f]{32}, expected [0-9a-f]{32} \(the entry is damaged\)$/);
    expect(await loadArtifact(files, { ...d, size: d.size + 1 })).toEqual(E.left(expect.objectContaining({ _tag: 'ArtifactTruncated', message: `has ${d.size} bytes, expected ${d.size + 1}` })));
    expect(await loadArtifact(files, { ...d, inline: `${d.inline as string}!` })).toEqual(E.left(expect.objectContaining({ _tag: 'ArtifactCorrupted', message: 'is not valid base64 (the entry is damaged)' })));
  });

  it('a store that cannot name bytes (no idOf) loads the artifact as a file of the same id', async () => {
    const files = createFileArtifactStore(artifactsDir());
    const d = await inlineDescriptor(files, bytes);
    const { idOf: _none, ...plain } = files;
    expect(await loadArtifact(plain, d)).toEqual(E.left(expect.objectContaining({ _tag: 'ArtifactMissing' })));
    await files.put(bytes);
    expect(await loadArtifact(plain, d)).toEqual(E.right(bytes));
  });

  it('answers inline outputs present without asking the store, and asks for the others in one batch', async () => {
    const files = createFileArtifactStore(artifactsDir());
    const asked: string[][] = [];
    const watched: ArtifactStore = { ...files, present: (refs) => (asked.push(refs.map((r) => r.id)), files.present(refs)) };
    const d = await inlineDescriptor(files, bytes);
    expect(await artifactsPresent(watched, [d, { ...d, size: 99 }])).toEqual([true, false]);
    expect(asked).toEqual([]);
    const id = await files.put(Buffer.alloc(2000));
    expect(await artifactsPresent(watched, [{ id, size: 2000 }, d, { id: 'ab'.repeat(16), size: 3 }])).toEqual([true, true, false]);
    expect(asked).toEqual([[id, 'ab'.repeat(16)]]);
    expect([inlinePresence(d), inlinePresence({ id, size: 2000 })]).toEqual([true, undefined]);
  });

  it('names where an artifact lives, and which ones take room in the store', async () => {
    const files = createFileArtifactStore(artifactsDir());
    const d = await inlineDescriptor(files, bytes);
    const file = { id: 'ab'.repeat(16), size: 2000 };
    expect(locateArtifact(files, d)).toBe(`(inside its cache entry) ${d.id}`);
    expect(locateArtifact(files, file)).toBe(files.locate(file.id));
    expect(storedArtifacts([d, file, { id: 'none', size: 0 }])).toEqual([file]);
    expect([keptInline(files, bytes), keptInline(files, new Uint8Array(0)), keptInline(files, new Uint8Array(INLINE_MAX_BYTES + 1)), keptInline({ ...files, idOf: undefined }, bytes)]).toEqual([true, false, false, false]);
  });

  it('an S3-like store without idOf never gets inline outputs: every output is put', async () => {
    const { idOf: _none, ...plain } = createFileArtifactStore(artifactsDir());
    const run = await runnerOf({ artifacts: plain }).run(tinyPipeline);
    for (const d of Object.values(run.steps.tiny_values?.outputs ?? {})) expect(d.inline).toBeUndefined();
    expect(artifactFiles()).toHaveLength(8);
  });
});

describe('laws', () => {
  /** Values of every kind the runner serializes, tiny or not. */
  const anyOutput = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }).filter((v) => E.isRight(serializeOutput(v, 'auto'))),
    fc.string({ maxLength: 200 }),
    fc.float64Array({ maxLength: 40 }),
    fc.int16Array({ maxLength: 40 }),
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  );

  it('for any tiny value, the inline round trip gives an equal value and the id its file would have', async () => {
    const files = createFileArtifactStore(artifactsDir());
    await fc.assert(
      fc.asyncProperty(anyOutput, async (value) => {
        const serialized = serializeOutput(value, 'auto');
        if (E.isLeft(serialized)) throw new Error(serialized.left.reason);
        const { bytes, kind, dtype } = serialized.right;
        fc.pre(keptInline(files, bytes));
        const d: ArtifactDescriptor = { ...(await inlineDescriptor(files, bytes, kind)), ...(dtype === undefined ? {} : { dtype }) };
        const loaded = await loadArtifact(files, d);
        if (E.isLeft(loaded)) throw new Error(loaded.left.message);
        expect(deserializeOutput(loaded.right, d, 'auto')).toEqual(E.right(value));
        expect(await files.put(bytes)).toBe(d.id);
      }),
      { numRuns: 200 },
    );
  });

  it('through a runner: any tiny output is kept inline, served from its entry by a later runner, equal to what the step returned', async () => {
    let index = 0;
    await fc.assert(
      fc.asyncProperty(anyOutput, async (value) => {
        const name = `law_${index++}`;
        const s = step(function any_output() {
          return value;
        }).named(name);
        const p = pipeline(name, (p) => ({ result: p.call(s) }));
        const first = await runnerOf().run(p);
        const d = first.steps[name]?.outputs?.['output'];
        expect(d?.inline !== undefined).toBe((d?.size ?? 0) > 0 && (d?.size ?? 0) <= INLINE_MAX_BYTES);
        const again = await runnerOf().run(p);
        expect(again.steps[name]?.status).toBe('cached');
        expect(await again.output('result')).toEqual(value);
      }),
      { numRuns: 15 },
    );
  });
});

it('no file is written for a tiny output even when the step returns a typed array the store could take at once', async () => {
  const s = step(function tiny_typed() {
    return new Float32Array([1, 2, 3]);
  });
  await runnerOf().run(pipeline('tiny_typed', (p) => ({ result: p.call(s) })));
  expect(fs.existsSync(artifactsDir()) ? artifactFiles() : []).toEqual([]);
});
