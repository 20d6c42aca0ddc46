import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { computeStepKey, encodeKeyFrame, KEY_FORMAT_VERSION, type StepKeyParts } from '../src/cache/key';
import { encodeCanonical } from '../src/encoding/canonical';
import { createContentHasher, keyHashFunction } from '../src/hash/hashers';

let hash: (bytes: Uint8Array) => string;

beforeAll(async () => {
  hash = await keyHashFunction();
});

const keyOf = (parts: StepKeyParts): string => {
  const r = computeStepKey(hash, parts);
  if (E.isLeft(r)) throw new Error(`expected a key, got ${r.left.field}${r.left.path}: ${r.left.reason}`);
  return r.right;
};

const baseParts: StepKeyParts = {
  step: 'svc_trainer',
  code: 'function svc_trainer({ X_train, y_train, gamma }) { return fit(X_train, y_train, gamma); }',
  parameters: { gamma: 0.002, kernel: 'rbf', C: [1, 10] },
  inputs: { X_train: 'bytes/Float64Array/00112233445566778899aabbccddeeff', y_train: 'json//ffeeddccbbaa99887766554433221100' },
  outputs: { output: 'auto' },
  settings: {},
};

// arbitraries

const name = fc.stringMatching(/^[a-z_][a-z0-9_]{0,6}$/);
const paramValue = fc.jsonValue({ maxDepth: 2 });
const params = fc.dictionary(name, paramValue, { maxKeys: 4, noNullPrototype: true });
const digest = fc.stringMatching(/^(json|bytes\/Float64Array)\/\/?[0-9a-f]{32}$/);

const partsArb: fc.Arbitrary<StepKeyParts> = fc.record({
  step: name,
  code: fc.string({ maxLength: 40 }),
  parameters: params,
  inputs: fc.dictionary(name, digest, { maxKeys: 3, noNullPrototype: true }),
  outputs: fc.dictionary(name, fc.constantFrom('auto', 'codec:Model', 'codec:Date'), { minKeys: 1, maxKeys: 3, noNullPrototype: true }),
  settings: fc.constant({}),
});

/** A deep copy of plain data (structuredClone would make objects of another realm under jest). */
const deepCopy = <T>(x: T): T => {
  if (Array.isArray(x)) return x.map(deepCopy) as T;
  if (typeof x === 'object' && x !== null) return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, deepCopy(v)])) as T;
  return x;
};

const reorder = <T>(record: Readonly<Record<string, T>>): Record<string, T> => Object.fromEntries(Object.entries(record).reverse());

/** One component of the parts changed, in every way the key must notice. */
const mutationArb = (parts: StepKeyParts): fc.Arbitrary<readonly [string, StepKeyParts]> => {
  const options: Array<fc.Arbitrary<readonly [string, StepKeyParts]>> = [
    name.filter((n) => n !== parts.step).map((step) => ['step name', { ...parts, step }] as const),
    fc.string({ maxLength: 40 }).filter((c) => c !== parts.code).map((code) => ['code', { ...parts, code }] as const),
    fc
      .tuple(name.filter((k) => !(k in parts.parameters)), paramValue)
      .map(([k, v]) => ['added parameter', { ...parts, parameters: { ...parts.parameters, [k]: v } }] as const),
    fc
      .tuple(fc.constantFrom('auto', 'codec:Model', 'codec:Other'), fc.nat())
      .filter(([f, i]) => {
        const keys = Object.keys(parts.outputs);
        return parts.outputs[keys[i % keys.length] as string] !== f;
      })
      .map(([f, i]) => {
        const keys = Object.keys(parts.outputs);
        return ['output format', { ...parts, outputs: { ...parts.outputs, [keys[i % keys.length] as string]: f } }] as const;
      }),
  ];
  const paramKeys = Object.keys(parts.parameters);
  if (paramKeys.length > 0) {
    options.push(
      fc
        .tuple(fc.constantFrom(...paramKeys), paramValue)
        .filter(([k, v]) => !isDeepStrictEqual(parts.parameters[k], v))
        .map(([k, v]) => ['parameter value', { ...parts, parameters: { ...parts.parameters, [k]: v } }] as const),
      fc.constantFrom(...paramKeys).map((k) => {
        const { [k]: _removed, ...rest } = parts.parameters;
        return ['removed parameter', { ...parts, parameters: rest }] as const;
      }),
    );
  }
  const inputKeys = Object.keys(parts.inputs);
  if (inputKeys.length > 0) {
    options.push(
      fc
        .tuple(fc.constantFrom(...inputKeys), digest)
        .filter(([k, d]) => parts.inputs[k] !== d)
        .map(([k, d]) => ['input digest', { ...parts, inputs: { ...parts.inputs, [k]: d } }] as const),
    );
  }
  return fc.oneof(...options);
};

describe('computeStepKey', () => {
  it('gives a 256-bit hex key', () => {
    expect(keyOf(baseParts)).toMatch(/^[0-9a-f]{64}$/);
    expect(KEY_FORMAT_VERSION).toBeGreaterThanOrEqual(1);
  });

  it('equal parts give equal keys (property)', () => {
    fc.assert(
      fc.property(partsArb, (parts) => {
        expect(keyOf(deepCopy(parts))).toBe(keyOf(parts));
      }),
      { numRuns: 200 },
    );
  });

  it('changing any one component changes the key (property)', () => {
    fc.assert(
      fc.property(
        partsArb.chain((parts) => mutationArb(parts).map((m) => [parts, m] as const)),
        ([parts, [, changed]]) => {
          expect(keyOf(changed)).not.toBe(keyOf(parts));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the order of parameter, input and output keys does not matter (property)', () => {
    fc.assert(
      fc.property(partsArb, (parts) => {
        const reordered: StepKeyParts = { ...parts, parameters: reorder(parts.parameters), inputs: reorder(parts.inputs), outputs: reorder(parts.outputs) };
        expect(keyOf(reordered)).toBe(keyOf(parts));
      }),
      { numRuns: 200 },
    );
  });

  it.each<[string, Partial<StepKeyParts>]>([
    ['another step name', { step: 'svc_trainer_2' }],
    ['other code', { code: `${baseParts.code} ` }],
    ['another parameter value', { parameters: { ...baseParts.parameters, gamma: 0.0021 } }],
    ['a parameter of another type (number to string)', { parameters: { ...baseParts.parameters, gamma: '0.002' } }],
    ['an added parameter', { parameters: { ...baseParts.parameters, extra: null } }],
    ['an added undefined parameter', { parameters: { ...baseParts.parameters, extra: undefined } }],
    ['another input digest', { inputs: { ...baseParts.inputs, X_train: 'bytes/Float32Array/00112233445566778899aabbccddeeff' } }],
    ['a renamed input', { inputs: { X_test: baseParts.inputs.X_train as string, y_train: baseParts.inputs.y_train as string } }],
    ['another output format', { outputs: { output: 'codec:Model' } }],
    ['a renamed output', { outputs: { model: 'auto' } }],
    ['an added setting', { settings: { precision: 'f32' } }],
  ])('%s gives another key', (_label, change) => {
    expect(keyOf({ ...baseParts, ...change })).not.toBe(keyOf(baseParts));
  });

  it('0 and -0 parameters give different keys', () => {
    const zero = keyOf({ ...baseParts, parameters: { x: 0 } });
    expect(keyOf({ ...baseParts, parameters: { x: -0 } })).not.toBe(zero);
  });

  it('a value moved from parameters to inputs changes the key', () => {
    const asParameter = keyOf({ ...baseParts, parameters: { x: 'json//ab' }, inputs: {} });
    const asInput = keyOf({ ...baseParts, parameters: {}, inputs: { x: 'json//ab' } });
    expect(asParameter).not.toBe(asInput);
  });

  it('an unencodable parameter gives Left with the parameter name and the path inside it', () => {
    const r = computeStepKey(hash, { ...baseParts, parameters: { gamma: 1, model: { layers: [{ activation: () => 0 }] } } });
    expect(E.isLeft(r)).toBe(true);
    if (E.isLeft(r)) {
      expect(r.left._tag).toBe('UnencodableParameter');
      expect(r.left.field).toBe('model');
      expect(r.left.path).toBe('.layers[0].activation');
      expect(r.left.reason).toMatch(/function/);
    }
  });

  it('an unencodable parameter at the top names it with an empty path', () => {
    const r = computeStepKey(hash, { ...baseParts, parameters: { rng: Symbol('seed') } });
    expect(E.isLeft(r) && [r.left.field, r.left.path]).toEqual(['rng', '']);
  });

  it('a parameter holding a class instance names the class', () => {
    class Scaler {
      readonly factor = 2;
    }
    const r = computeStepKey(hash, { ...baseParts, parameters: { scaler: new Scaler() } });
    expect(E.isLeft(r) && r.left.field).toBe('scaler');
    expect(E.isLeft(r) && r.left.reason).toMatch(/Scaler/);
  });

  it('uses the hash it is given on the canonical bytes', () => {
    const seen: Uint8Array[] = [];
    const r = computeStepKey((b) => (seen.push(b), 'fixed'), baseParts);
    expect(r).toEqual(E.right('fixed'));
    expect(seen).toHaveLength(1);
    expect(seen[0]?.length).toBeGreaterThan(0);
  });
});

describe('encodeKeyFrame', () => {
  const general = (parts: StepKeyParts): Uint8Array | undefined => {
    const encoded = encodeCanonical([KEY_FORMAT_VERSION, parts.step, parts.code, parts.parameters, parts.inputs, parts.outputs, parts.settings]);
    return E.isRight(encoded) ? encoded.right : undefined;
  };
  // Any text: multi-byte characters, lone surrogates (which the general encoder tags apart).
  const text = fc.string({ unit: 'binary', maxLength: 12 });
  const anyText = fc.oneof(text, fc.constantFrom('\ud800', 'a\udfffb', 'é', '😀'));
  const textRecord = fc.dictionary(anyText, anyText, { maxKeys: 4, noNullPrototype: true });
  const wideArb: fc.Arbitrary<StepKeyParts> = fc.record({
    step: anyText,
    code: anyText,
    parameters: fc.oneof(params, textRecord, fc.dictionary(name, fc.oneof(fc.double(), anyText), { maxKeys: 4, noNullPrototype: true }), fc.dictionary(name, fc.anything({ maxDepth: 2 }), { maxKeys: 3 })),
    inputs: fc.oneof(textRecord, fc.dictionary(name, digest, { maxKeys: 3 })),
    outputs: textRecord,
    settings: fc.oneof(fc.constant({}), fc.dictionary(name, paramValue, { maxKeys: 3 })),
  });

  it('writes the bytes the general encoder writes, or gives way to it (property)', () => {
    fc.assert(
      fc.property(fc.oneof(partsArb, wideArb), (parts) => {
        const frame = encodeKeyFrame(parts);
        const expected = general(parts);
        if (frame !== undefined) expect(expected).toEqual(frame);
      }),
      { numRuns: 500 },
    );
  });

  it('writes the frame itself for the usual parts (records of strings and numbers, and plain parameters)', () => {
    const parts: StepKeyParts = { step: 'link_1', code: 'fingerprint:ab', parameters: { n: 1, xs: [1, 'é'] }, inputs: { previous: 'json//00ff' }, outputs: { output: 'auto' }, settings: {} };
    expect(encodeKeyFrame(parts)).toEqual(general(parts));
  });

  it('writes numbers as the general encoder does: -0 apart from 0, one NaN, infinities, the largest and smallest', () => {
    const base: StepKeyParts = { step: 's', code: 'c', parameters: {}, inputs: {}, outputs: { output: 'auto' }, settings: {} };
    const numbers = { a: 0, b: -0, c: Number.NaN, d: Infinity, e: -Infinity, f: Number.MAX_VALUE, g: Number.MIN_VALUE, h: -2.5, s: 'x' };
    expect(encodeKeyFrame({ ...base, parameters: numbers })).toEqual(general({ ...base, parameters: numbers }));
    expect(encodeKeyFrame({ ...base, parameters: { a: 0 } })).not.toEqual(encodeKeyFrame({ ...base, parameters: { a: -0 } }));
    expect(encodeKeyFrame({ ...base, parameters: { a: 1 } })).not.toEqual(encodeKeyFrame({ ...base, parameters: { a: '1' } }));
    expect(encodeKeyFrame({ ...base, parameters: { c: Number.NaN } })).toEqual(encodeKeyFrame({ ...base, parameters: { c: -Number.NaN } }));
  });

  it('gives way for a lone surrogate in the name or code and for an unencodable parameter; a record with one is encoded as the general encoder does', () => {
    const base: StepKeyParts = { step: 's', code: 'c', parameters: {}, inputs: {}, outputs: { output: 'auto' }, settings: {} };
    expect(encodeKeyFrame({ ...base, step: 'a\ud800' })).toBeUndefined();
    expect(encodeKeyFrame({ ...base, code: '\udfff' })).toBeUndefined();
    expect(encodeKeyFrame({ ...base, parameters: { f: () => 1 } })).toBeUndefined();
    const lone = { ...base, inputs: { ['\udc00']: 'json//00' } };
    expect(encodeKeyFrame(lone)).toEqual(general(lone));
    expect(encodeKeyFrame(lone)).not.toEqual(encodeKeyFrame({ ...base, inputs: { ['\ufffd']: 'json//00' } }));
  });

  it('a frozen record shared by keys is written the same every time, and one with a symbol key never as a plain record', () => {
    const base: StepKeyParts = { step: 's', code: 'c', parameters: {}, inputs: {}, outputs: Object.freeze({ output: 'auto' }), settings: Object.freeze({}) };
    const first = encodeKeyFrame(base);
    expect(first).toEqual(general(base));
    expect(encodeKeyFrame({ ...base, step: 't' })).toEqual(general({ ...base, step: 't' }));
    expect(encodeKeyFrame(base)).toEqual(first);
    const withSymbol = { ...base, outputs: Object.freeze({ output: 'auto', [Symbol('s')]: 'x' }) };
    expect(encodeKeyFrame(withSymbol)).toEqual(general(withSymbol));
    expect(encodeKeyFrame(withSymbol)).toEqual(general(withSymbol));
  });
});

describe('hashers', () => {
  it('keyHashFunction is deterministic and sensitive to every byte', async () => {
    const h = await keyHashFunction();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), (bytes, i) => {
        const flipped = bytes.slice();
        const at = i % flipped.length;
        flipped[at] = (flipped[at] as number) ^ 1;
        expect(h(bytes)).toBe(h(bytes.slice()));
        expect(h(flipped)).not.toBe(h(bytes));
      }),
      { numRuns: 100 },
    );
  });

  it('the content hasher gives the same digest however the bytes are split into chunks', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 4 }), async (bytes, cuts) => {
        const whole = await createContentHasher();
        whole.update(bytes);
        const chunked = await createContentHasher();
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        let from = 0;
        for (const p of [...points, bytes.length]) {
          chunked.update(bytes.subarray(from, p));
          from = p;
        }
        const d = whole.digest();
        expect(d).toMatch(/^[0-9a-f]{32}$/);
        expect(chunked.digest()).toBe(d);
      }),
      { numRuns: 50 },
    );
  });

  it('interleaved content hashers do not share state', async () => {
    const a = await createContentHasher();
    const b = await createContentHasher();
    a.update(new Uint8Array([1]));
    b.update(new Uint8Array([2]));
    a.update(new Uint8Array([3]));
    const alone = await createContentHasher();
    alone.update(new Uint8Array([1, 3]));
    const [da, db] = [a.digest(), b.digest()];
    expect(da).toBe(alone.digest());
    expect(db).not.toBe(da);
  });

  it('a content hasher used again after its digest starts from nothing, and a used one refuses more bytes', async () => {
    const first = await createContentHasher();
    first.update(new Uint8Array([9, 9, 9]));
    const nine = first.digest();
    expect(() => first.update(new Uint8Array([1]))).toThrow(/digest already/);
    expect(() => first.digest()).toThrow(/digest already/);
    const [again, fresh] = [await createContentHasher(), await createContentHasher()];
    again.update(new Uint8Array([1, 2]));
    fresh.update(new Uint8Array([1, 2]));
    expect(again.digest()).toBe(fresh.digest());
    const repeat = await createContentHasher();
    repeat.update(new Uint8Array([9, 9, 9]));
    expect(repeat.digest()).toBe(nine);
  });
});

// the same key in separate processes

const script = (src: string) => `
import { computeStepKey } from ${JSON.stringify(path.join(src, 'cache', 'key'))};
import { keyHashFunction } from ${JSON.stringify(path.join(src, 'hash', 'hashers'))};

const reversed = process.argv[2] === 'reversed';
const order = <T>(entries: Array<[string, T]>): Record<string, T> => Object.fromEntries(reversed ? [...entries].reverse() : entries);

const main = async () => {
  const hash = await keyHashFunction();
  const parts = [
    {
      step: 'svc_trainer',
      code: 'function svc_trainer() {}',
      parameters: order<unknown>([['gamma', 0.002], ['kernel', 'rbf'], ['grid', order<unknown>([['C', [1, 10, 100]], ['tol', -0], ['note', 'caf\\u00e9 \\ud83d\\ude00']])], ['big', 12345678901234567890n]]),
      inputs: order([['X_train', 'bytes/Float64Array/00112233445566778899aabbccddeeff'], ['y_train', 'json//ffeeddccbbaa99887766554433221100']]),
      outputs: order([['model', 'auto'], ['report', 'codec:Report']]),
      settings: {},
    },
    {
      step: 'loader',
      code: '() => load()',
      parameters: order<unknown>([['when', new Date(86400000)], ['weights', new Float32Array([0.5, -1])], ['tags', new Set(['a', 'b'])], ['lookup', new Map([['x', 1], ['y', 2]])]]),
      inputs: {},
      outputs: { output: 'auto' },
      settings: {},
    },
  ];
  const keys = parts.map((p) => {
    const r = computeStepKey(hash, p);
    if (r._tag === 'Left') throw new Error(r.left.reason);
    return r.right;
  });
  process.stdout.write(JSON.stringify(keys));
};
main().catch((e) => { console.error(e); process.exit(1); });
`;

const inProcessParts = (): StepKeyParts[] => [
  {
    step: 'svc_trainer',
    code: 'function svc_trainer() {}',
    parameters: { big: 12345678901234567890n, grid: { note: 'caf\u00e9 \ud83d\ude00', tol: -0, C: [1, 10, 100] }, kernel: 'rbf', gamma: 0.002 },
    inputs: { y_train: 'json//ffeeddccbbaa99887766554433221100', X_train: 'bytes/Float64Array/00112233445566778899aabbccddeeff' },
    outputs: { report: 'codec:Report', model: 'auto' },
    settings: {},
  },
  {
    step: 'loader',
    code: '() => load()',
    parameters: { lookup: new Map([['y', 2], ['x', 1]]), tags: new Set(['b', 'a']), weights: new Float32Array([0.5, -1]), when: new Date(86400000) },
    inputs: {},
    outputs: { output: 'auto' },
    settings: {},
  },
];

const runChild = (file: string, arg: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    const tsx = path.join(__dirname, '..', 'node_modules', '.bin', 'tsx');
    const child = spawn(tsx, [file, arg], { cwd: path.dirname(file), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });

describe('keys across processes', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-key-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('two separate processes, building their objects in different key orders, compute the same keys as this one', async () => {
    const file = path.join(dir, 'keys.ts');
    fs.writeFileSync(file, script(path.join(__dirname, '..', 'src')));
    const [a, b] = await Promise.all([runChild(file, 'forward'), runChild(file, 'reversed')]);
    expect(a.stderr).toBe('');
    expect(b.stderr).toBe('');
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const keysA = JSON.parse(a.stdout) as string[];
    const keysB = JSON.parse(b.stdout) as string[];
    expect(keysA).toHaveLength(2);
    expect(keysA[0]).not.toBe(keysA[1]);
    expect(keysB).toEqual(keysA);
    expect(inProcessParts().map(keyOf)).toEqual(keysA);
  });
});
