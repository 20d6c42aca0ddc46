/**
 * Bad input thrown at the edges that read it: run config values and files, and artifact bytes.
 * Every outcome must be a value or a typed failure; nothing may throw, and nothing may return
 * data other than what was stored.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import * as t from 'io-ts';
import { applyRunConfig, decodeRunConfig, loadRunConfig, type RunConfigError } from '../src/config/run-config';
import { pipeline } from '../src/pipeline/pipeline';
import { createFileArtifactStore, type ArtifactLoadError, type ArtifactRef, type ArtifactStore } from '../src/store/artifact-store';
import { deserializeOutput, serializeOutput, type ArtifactDescriptor } from '../src/store/serialize';
import { removeDir, tempDir } from './support/fixtures';

let dir: string;

beforeAll(() => {
  dir = tempDir('stepcache-fuzz-');
});
afterAll(() => {
  removeDir(dir);
});
afterEach(() => {
  expect(Object.prototype).not.toHaveProperty('polluted');
});

const RUN_CONFIG_TAGS: ReadonlyArray<RunConfigError['_tag']> = ['ConfigUnreadable', 'ConfigSyntax', 'ConfigInvalid'];

/** A Left must be a typed, explained failure about the right file. */
const expectExplainedFailure = (error: RunConfigError, file: string): void => {
  expect(RUN_CONFIG_TAGS).toContain(error._tag);
  expect(error.file).toBe(file);
  expect(typeof error.field).toBe('string');
  expect(typeof error.message).toBe('string');
  expect(error.message.length).toBeGreaterThan(0);
  expect(error.message).toContain(file);
};

// (1) values thrown at decodeRunConfig

const settingValue = fc.oneof(
  fc.boolean(),
  fc.constantFrom('90s', '30m', '1.5h', '7d', '0ms', '-1d', '7 days', '', 'yes', '__proto__'),
  fc.double(),
  fc.integer(),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  fc.jsonValue({ maxDepth: 3 }),
);

const settingsRecord = fc.record(
  {
    enableCache: settingValue,
    version: settingValue,
    files: settingValue,
    ignoredInputs: settingValue,
    expiresAfter: settingValue,
    refresh: settingValue,
    dependsOn: settingValue,
    cacheKey: settingValue,
  },
  { requiredKeys: [] },
);

const stepName = fc.oneof(fc.constantFrom('svc_trainer', 'training_data_loader', '__proto__', 'constructor', 'a b', ''), fc.string({ maxLength: 10 }));

const biasedConfig = fc.record(
  {
    enableCache: settingValue,
    expiresAfter: settingValue,
    version: settingValue,
    files: settingValue,
    steps: fc.oneof(fc.dictionary(stepName, fc.oneof(settingsRecord, fc.jsonValue({ maxDepth: 2 })), { maxKeys: 4 }), fc.jsonValue({ maxDepth: 3 })),
    parameters: fc.oneof(fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 5 }), fc.jsonValue({ maxDepth: 3 })),
    extra: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);

/** Configs that are valid by construction. */
const validSettings = fc.record(
  {
    enableCache: fc.boolean(),
    version: fc.string({ minLength: 1, maxLength: 10 }),
    files: fc.array(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 3 }),
    ignoredInputs: fc.array(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 3 }),
    expiresAfter: fc.oneof(fc.nat(), fc.constantFrom('90s', '30m', '1.5h', '7d', '250ms')),
    refresh: fc.boolean(),
  },
  { requiredKeys: [] },
);
const validStepName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,10}$/).filter((name) => name !== '__proto__');
const validConfig = fc
  .tuple(
    validSettings,
    fc.option(fc.dictionary(validStepName, validSettings, { maxKeys: 3 }), { nil: undefined }),
    fc.option(fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 5 }), { nil: undefined }),
  )
  .map(([settings, steps, parameters]) => ({ ...settings, ...(steps === undefined ? {} : { steps }), ...(parameters === undefined ? {} : { parameters }) }));

/** A valid config with one field replaced by a random value. */
const nearlyValidConfig = fc
  .tuple(validConfig, fc.constantFrom('enableCache', 'version', 'files', 'ignoredInputs', 'expiresAfter', 'refresh', 'steps', 'parameters', 'dependsOn', 'cacheKey', 'unknown'), settingValue)
  .map(([config, key, value]) => ({ ...config, [key]: value }));

/** Plain JSON data all the way down: finite numbers, plain objects, arrays, no getters. */
const isPlainJson = (value: unknown): boolean => {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isPlainJson);
  if (typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.keys(value).every((k) => {
    const d = Object.getOwnPropertyDescriptor(value, k);
    return d !== undefined && 'value' in d && isPlainJson(d.value);
  });
};

const anyPipeline = pipeline('fuzzed', () => undefined);

describe('decodeRunConfig on random values', () => {
  const check = (input: unknown): void => {
    const result = decodeRunConfig(input, 'fuzz.yaml');
    if (E.isLeft(result)) {
      expectExplainedFailure(result.left, 'fuzz.yaml');
      return;
    }
    // What decodes is plain JSON data that withOptions accepts as it is.
    const config = result.right;
    expect(isPlainJson(config)).toBe(true);
    expect(() => applyRunConfig(anyPipeline, config)).not.toThrow();
    for (const settings of [config.settings, ...Object.values(config.steps)]) {
      expect(Object.keys(settings).every((k) => ['enableCache', 'version', 'files', 'ignoredInputs', 'expiresAfter', 'refresh'].includes(k))).toBe(true);
    }
  };

  it('returns a Right or an explained Left for any JSON value', () => {
    fc.assert(fc.property(fc.jsonValue(), check), { numRuns: 300 });
  });

  it('returns a Right or an explained Left for objects with the known keys and random values', () => {
    fc.assert(fc.property(fc.oneof(biasedConfig, nearlyValidConfig, validConfig), check), { numRuns: 400 });
  });

  it('returns a Right or an explained Left for any value at all (class instances, null prototypes, symbols, ...)', () => {
    fc.assert(fc.property(fc.anything({ withMap: true, withSet: true, withDate: true, withTypedArray: true, withBigInt: true, withNullPrototype: true, withObjectString: true }), check), { numRuns: 200 });
  });

  it('accepts every valid config as it is, and what it produced decodes again to itself', () => {
    fc.assert(
      fc.property(validConfig, (input) => {
        const first = decodeRunConfig(input, 'fuzz.yaml');
        if (E.isLeft(first)) throw new Error(first.left.message);
        const { steps = {}, parameters = {}, ...settings } = input;
        expect(first.right).toEqual({ source: 'fuzz.yaml', settings, steps, parameters });
        const again = decodeRunConfig({ ...first.right.settings, steps: first.right.steps, parameters: first.right.parameters }, 'fuzz.yaml');
        expect(again).toEqual(first);
      }),
      { numRuns: 200 },
    );
  });
});

// (2) bytes thrown at the artifact loader and the deserializer

const Point = t.type({ x: t.number, tags: t.array(t.string) }, 'Point');

const BYTE_DTYPES = ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array', 'Buffer', 'ArrayBuffer'];

/** Every way a descriptor may ask for bytes to be read, with the format each needs. */
const READINGS: ReadonlyArray<{ readonly descriptor: Omit<ArtifactDescriptor, 'id' | 'size'>; readonly format: 'auto' | t.Mixed }> = [
  { descriptor: { kind: 'json', format: 'auto' }, format: 'auto' },
  { descriptor: { kind: 'none', format: 'auto' }, format: 'auto' },
  { descriptor: { kind: 'bytes', format: 'auto' }, format: 'auto' }, // no dtype
  { descriptor: { kind: 'bytes', dtype: 'Float128Array', format: 'auto' }, format: 'auto' },
  ...BYTE_DTYPES.map((dtype) => ({ descriptor: { kind: 'bytes' as const, dtype, format: 'auto' }, format: 'auto' as const })),
  { descriptor: { kind: 'json', format: 'codec:Point' }, format: Point },
  { descriptor: { kind: 'bytes', dtype: 'Float64Array', format: 'codec:Point' }, format: Point },
  { descriptor: { kind: 'none', format: 'codec:Point' }, format: Point },
];

/** Deserializes bytes every way there is; each outcome is a value or a tagged failure. */
const deserializeEveryWay = (bytes: Buffer): void => {
  for (const { descriptor, format } of READINGS) {
    const result = deserializeOutput(bytes, { ...descriptor, id: 'fuzz', size: bytes.byteLength }, format);
    expect(['Left', 'Right']).toContain(result._tag);
    if (E.isLeft(result)) {
      expect(result.left._tag).toBe('UndecodableArtifact');
      expect(result.left.message.length).toBeGreaterThan(0);
    }
  }
};

interface RealArtifact {
  readonly name: string;
  readonly ref: ArtifactRef;
  readonly bytes: Buffer;
  readonly descriptor: ArtifactDescriptor;
  readonly format: 'auto' | t.Mixed;
}

const LOAD_TAGS: ReadonlyArray<ArtifactLoadError['_tag']> = ['ArtifactMissing', 'ArtifactTruncated', 'ArtifactCorrupted', 'ArtifactUnreadable'];

describe('the artifact loader and deserializer on random and damaged bytes', () => {
  let store: ArtifactStore;
  let artifacts: RealArtifact[];

  beforeAll(async () => {
    store = createFileArtifactStore(path.join(dir, 'artifacts'));
    const values: ReadonlyArray<readonly [string, unknown, 'auto' | t.Mixed]> = [
      ['json', { gamma: 0.001, kernels: ['rbf', 'linear'], nested: { ok: true } }, 'auto'],
      ['Float64Array', new Float64Array([1.5, -2, Number.NaN, Number.POSITIVE_INFINITY]), 'auto'],
      ['BigInt64Array', new BigInt64Array([1n, -2n]), 'auto'],
      ['Buffer', Buffer.from('raw bytes of a model'), 'auto'],
      ['codec', { x: 1, tags: ['a'] }, Point],
    ];
    artifacts = [];
    for (const [name, value, format] of values) {
      const serialized = serializeOutput(value, format);
      if (E.isLeft(serialized)) throw new Error(`cannot serialize ${name}`);
      const bytes = Buffer.from(serialized.right.bytes);
      const id = await store.put(bytes);
      const descriptor: ArtifactDescriptor = { id, kind: serialized.right.kind, ...(serialized.right.dtype === undefined ? {} : { dtype: serialized.right.dtype }), size: bytes.byteLength, format: serialized.right.format };
      artifacts.push({ name, ref: { id, size: bytes.byteLength }, bytes, descriptor, format });
    }
  });

  /** Puts `content` where the artifact lives, loads it, and checks the outcome; restores the artifact. */
  const loadAs = async (artifact: RealArtifact, content: Uint8Array): Promise<E.Either<ArtifactLoadError, Buffer>> => {
    const file = store.locate(artifact.ref.id);
    fs.writeFileSync(file, content);
    try {
      const loaded = await store.get(artifact.ref);
      if (E.isRight(loaded)) {
        // Never wrong data: a Right is exactly what was stored, and decodes as it did.
        expect(Buffer.compare(loaded.right, artifact.bytes)).toBe(0);
        expect(E.isRight(deserializeOutput(loaded.right, artifact.descriptor, artifact.format))).toBe(true);
      } else {
        expect(LOAD_TAGS).toContain(loaded.left._tag);
        expect(loaded.left.id).toBe(artifact.ref.id);
        expect(loaded.left.message.length).toBeGreaterThan(0);
      }
      return loaded;
    } finally {
      fs.writeFileSync(file, artifact.bytes);
    }
  };

  const artifactIndex = fc.nat({ max: 4 });

  it('loads random bytes under a real id as a typed failure, never as data', async () => {
    await fc.assert(
      fc.asyncProperty(artifactIndex, fc.uint8Array({ maxLength: 4096 }), async (i, bytes) => {
        const artifact = artifacts[i] as RealArtifact;
        const loaded = await loadAs(artifact, bytes);
        if (Buffer.compare(Buffer.from(bytes), artifact.bytes) !== 0) expect(E.isLeft(loaded)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('loads random bytes of exactly the right size as ArtifactCorrupted: the hash decides, not the size', async () => {
    await fc.assert(
      fc.asyncProperty(
        artifactIndex.chain((i) => fc.tuple(fc.constant(i), fc.uint8Array({ minLength: (artifacts[i] as RealArtifact).bytes.byteLength, maxLength: (artifacts[i] as RealArtifact).bytes.byteLength }))),
        async ([i, bytes]) => {
          const artifact = artifacts[i] as RealArtifact;
          fc.pre(Buffer.compare(Buffer.from(bytes), artifact.bytes) !== 0);
          expect(await loadAs(artifact, bytes)).toMatchObject(E.left({ _tag: 'ArtifactCorrupted' }));
        },
      ),
      { numRuns: 100 },
    );
  });

  type Mutation =
    | { readonly kind: 'truncate'; readonly keep: number }
    | { readonly kind: 'flip'; readonly flips: ReadonlyArray<{ readonly at: number; readonly bit: number }> }
    | { readonly kind: 'append'; readonly extra: Uint8Array }
    | { readonly kind: 'none' };

  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }),
    fc.record({ kind: fc.constant('flip' as const), flips: fc.array(fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }), { minLength: 1, maxLength: 4 }) }),
    fc.record({ kind: fc.constant('append' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    fc.constant({ kind: 'none' as const }),
  );

  const mutate = (original: Buffer, m: Mutation): Buffer => {
    switch (m.kind) {
      case 'truncate':
        return Buffer.from(original.subarray(0, m.keep % original.byteLength));
      case 'flip': {
        const copy = Buffer.from(original);
        for (const { at, bit } of m.flips) copy[at % copy.byteLength] = (copy[at % copy.byteLength] as number) ^ (1 << bit);
        return copy;
      }
      case 'append':
        return Buffer.concat([original, m.extra]);
      case 'none':
        return Buffer.from(original);
    }
  };

  it('loads a truncated, bit-flipped or extended artifact as the matching typed failure, and an intact one as itself', async () => {
    await fc.assert(
      fc.asyncProperty(artifactIndex, mutation, async (i, m) => {
        const artifact = artifacts[i] as RealArtifact;
        const damaged = mutate(artifact.bytes, m);
        const loaded = await loadAs(artifact, damaged);
        const unchanged = Buffer.compare(damaged, artifact.bytes) === 0; // flips can cancel out
        if (unchanged) expect(E.isRight(loaded)).toBe(true);
        else if (m.kind === 'truncate') expect(loaded).toMatchObject(E.left({ _tag: 'ArtifactTruncated' }));
        else expect(loaded).toMatchObject(E.left({ _tag: 'ArtifactCorrupted' }));
      }),
      { numRuns: 200 },
    );
  });

  it('loads a missing artifact, or a directory in its place, as a typed failure', async () => {
    const artifact = artifacts[0] as RealArtifact;
    const file = store.locate(artifact.ref.id);
    fs.rmSync(file);
    try {
      expect(await store.get(artifact.ref)).toMatchObject(E.left({ _tag: 'ArtifactMissing' }));
      fs.mkdirSync(file);
      const loaded = await store.get(artifact.ref);
      expect(E.isLeft(loaded) && LOAD_TAGS.includes(loaded.left._tag)).toBe(true);
    } finally {
      fs.rmSync(file, { recursive: true, force: true });
      fs.writeFileSync(file, artifact.bytes);
    }
    expect(await store.get(artifact.ref)).toEqual(E.right(artifact.bytes));
  });

  it('deserializes random bytes every way (json, none, bytes of every dtype, a codec) to a value or a tagged failure', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.nat({ max: 7 }), (bytes, offset) => {
        deserializeEveryWay(Buffer.from(bytes));
        // at an odd offset inside a larger buffer, as pooled Buffers are
        const host = Buffer.alloc(bytes.byteLength + offset);
        host.set(bytes, offset);
        deserializeEveryWay(host.subarray(offset));
      }),
      { numRuns: 150 },
    );
  });

  it('deserializes damaged JSON and codec artifacts every way to a value or a tagged failure', () => {
    fc.assert(
      fc.property(artifactIndex, mutation, (i, m) => {
        deserializeEveryWay(mutate((artifacts[i] as RealArtifact).bytes, m));
      }),
      { numRuns: 200 },
    );
  });
});

// (3) text thrown at loadRunConfig

const YAML_PIECES = [
  'enableCache', 'expiresAfter', 'steps', 'parameters', 'svc_trainer', '__proto__', 'dependsOn', 'gamma',
  ':', ': ', ' ', '  ', '\n', '\n  ', '- ', ',', '[', ']', '{', '}', '&a ', '*a', '&b ', '*b', '!!str ', '!foo ', '!!js/function ', '!!binary ',
  '"', "'", '#', '<<: ', '---\n', '...\n', '%YAML 1.2\n', '? ', '|\n', '>\n', 'yes', 'true', 'null', '.nan', '-.inf', '7d', '-1', '0x1F', '1e400', '\t', '\\', '\ufeff', '\u2028',
];

const configText = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.array(fc.constantFrom(...YAML_PIECES), { maxLength: 60 }).map((pieces) => pieces.join('')),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.nat({ max: 3000 }).map((depth) => `parameters:\n  x: ${'['.repeat(depth)}${']'.repeat(depth)}\n`),
);

describe('loadRunConfig on random text', () => {
  it('resolves to a config or an explained failure, never rejects, for .yaml, .yml and .json files', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(configText, fc.constantFrom('.yaml', '.yml', '.json'), async (text, extension) => {
        const file = path.join(dir, `random-${n++}${extension}`);
        fs.writeFileSync(file, text);
        try {
          const result = await loadRunConfig(file);
          if (E.isLeft(result)) expectExplainedFailure(result.left, file);
          else expect(result.right.source).toBe(file);
        } finally {
          fs.rmSync(file, { force: true });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('resolves to a config or an explained failure for random bytes', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.constantFrom('.yaml', '.json'), async (bytes, extension) => {
        const file = path.join(dir, `bytes-${n++}${extension}`);
        fs.writeFileSync(file, bytes);
        try {
          const result = await loadRunConfig(file);
          if (E.isLeft(result)) expectExplainedFailure(result.left, file);
        } finally {
          fs.rmSync(file, { force: true });
        }
      }),
      { numRuns: 150 },
    );
  });
});
