import fc from 'fast-check';
import { describeChange, diffComponents, type KeyChange, type KeyComponents } from '../src/cache/components';
import type { FingerprintPart, FingerprintPartKind } from '../src/fingerprint';

// hand-built components

const FILE = '/project/pipeline.ts';
const part = (name: string, kind: FingerprintPartKind, hash: string, file: string | undefined = FILE): FingerprintPart => ({ name, kind, hash, ...(file === undefined ? {} : { file }) });

const PARTS: readonly FingerprintPart[] = [part('svc_trainer', 'source', 's1'), part('fit', 'function', 'f1'), part('SCALE', 'variable', 'v1'), part('fp-ts', 'package', 'p1', undefined)];

const base: KeyComponents = {
  code: 'fingerprint:1111',
  codeParts: PARTS,
  parameters: { gamma: { digest: 'g-0.002', preview: '0.002' }, C: { digest: 'c-1', preview: '1' } },
  inputs: {
    X_train: { digest: 'x1', step: 'training_data_loader', output: 'X_train' },
    y_train: { digest: 'y1', step: 'training_data_loader', output: 'y_train' },
  },
  outputs: { output: 'auto' },
  dependsOn: { tokenizer: 't1' },
  files: { 'data/labels.csv': 'f1' },
  cacheKey: 'etag-1',
};

/** `base` with some components replaced. */
const withChanges = (changes: Partial<KeyComponents>): KeyComponents => ({ ...base, ...changes });

const stored = (c: unknown): unknown => JSON.parse(JSON.stringify(c));

describe('diffComponents on hand-built components', () => {
  it('equal components give no change, also as stored (a JSON round trip)', () => {
    expect(diffComponents(base, base)).toEqual([]);
    expect(diffComponents(stored(base), base)).toEqual([]);
  });

  it('a changed parameter gives Parameter with before/after previews', () => {
    const now = withChanges({ parameters: { ...base.parameters, gamma: { digest: 'g-0.0001', preview: '0.0001' } } });
    const changes = diffComponents(stored(base), now);
    expect(changes).toEqual([{ _tag: 'Parameter', name: 'gamma', before: '0.002', after: '0.0001' }]);
    expect(changes.map(describeChange)).toEqual(['parameter gamma changed (0.002 -> 0.0001)']);
  });

  it('a parameter whose value changed but whose preview did not (a long value) is still a change', () => {
    const long = 'x'.repeat(39);
    const before = withChanges({ parameters: { text: { digest: 'd1', preview: `"${long}…` } } });
    const after = withChanges({ parameters: { text: { digest: 'd2', preview: `"${long}…` } } });
    expect(diffComponents(before, after)).toEqual([{ _tag: 'Parameter', name: 'text', before: `"${long}…`, after: `"${long}…` }]);
  });

  it('an added parameter has no before; a removed one no after', () => {
    const added = diffComponents(base, withChanges({ parameters: { ...base.parameters, tol: { digest: 't', preview: '0.1' } } }));
    expect(added).toEqual([{ _tag: 'Parameter', name: 'tol', after: '0.1' }]);
    expect(added.map(describeChange)).toEqual(['parameter tol was added (0.1)']);
    const removed = diffComponents(base, withChanges({ parameters: { gamma: { digest: 'g-0.002', preview: '0.002' } } }));
    expect(removed).toEqual([{ _tag: 'Parameter', name: 'C', before: '1' }]);
    expect(removed.map(describeChange)).toEqual(['parameter C was removed']);
  });

  it('a changed input gives Input naming the upstream step', () => {
    const changes = diffComponents(base, withChanges({ inputs: { ...base.inputs, X_train: { digest: 'x2', step: 'training_data_loader', output: 'X_train' } } }));
    expect(changes).toEqual([{ _tag: 'Input', name: 'X_train', step: 'training_data_loader', output: 'X_train', added: false, removed: false }]);
    expect(changes.map(describeChange)).toEqual(['input X_train changed (new content from training_data_loader)']);
  });

  it('an added input and a removed input', () => {
    const added = diffComponents(base, withChanges({ inputs: { ...base.inputs, w: { digest: 'w1', step: 'weights', output: 'output' } } }));
    expect(added).toEqual([{ _tag: 'Input', name: 'w', step: 'weights', output: 'output', added: true, removed: false }]);
    expect(added.map(describeChange)).toEqual(['input w was added']);
    const { y_train: _dropped, ...rest } = base.inputs;
    const removed = diffComponents(base, withChanges({ inputs: rest }));
    expect(removed).toEqual([{ _tag: 'Input', name: 'y_train', added: false, removed: true }]);
    expect(removed.map(describeChange)).toEqual(['input y_train was removed']);
  });

  it('a changed, added or removed file gives File with its path', () => {
    expect(diffComponents(base, withChanges({ files: { 'data/labels.csv': 'f2' } }))).toEqual([{ _tag: 'File', path: 'data/labels.csv' }]);
    expect(diffComponents(base, withChanges({ files: { 'data/labels.csv': 'f1', 'data/extra.csv': 'e' } }))).toEqual([{ _tag: 'File', path: 'data/extra.csv' }]);
    expect(diffComponents(base, withChanges({ files: {} }))).toEqual([{ _tag: 'File', path: 'data/labels.csv' }]);
    expect(describeChange({ _tag: 'File', path: 'data/labels.csv' })).toBe('file data/labels.csv changed');
  });

  it('a changed dependency gives DependsOn with its name', () => {
    const changes = diffComponents(base, withChanges({ dependsOn: { tokenizer: 't2' } }));
    expect(changes).toEqual([{ _tag: 'DependsOn', name: 'tokenizer' }]);
    expect(changes.map(describeChange)).toEqual(['dependency tokenizer changed']);
    expect(diffComponents(base, withChanges({ dependsOn: { tokenizer: 't1', vocabulary: 'v' } }))).toEqual([{ _tag: 'DependsOn', name: 'vocabulary' }]);
  });

  it('a changed cacheKey result gives CacheKey with before and after', () => {
    const changes = diffComponents(base, withChanges({ cacheKey: 'etag-2' }));
    expect(changes).toEqual([{ _tag: 'CacheKey', before: 'etag-1', after: 'etag-2' }]);
    expect(changes.map(describeChange)).toEqual(['its cacheKey changed (etag-1 -> etag-2)']);
    const { cacheKey: _gone, ...noKey } = base;
    expect(diffComponents(base, noKey)).toEqual([{ _tag: 'CacheKey', before: 'etag-1' }]);
    expect(diffComponents(noKey, base)).toEqual([{ _tag: 'CacheKey', after: 'etag-1' }]);
    expect(describeChange({ _tag: 'CacheKey', before: 'etag-1' })).toBe('its cacheKey changed (etag-1 -> unset)');
  });

  it('changed output names or formats give Outputs', () => {
    expect(diffComponents(base, withChanges({ outputs: { model: 'auto', metrics: 'auto' } }))).toEqual([{ _tag: 'Outputs' }]);
    expect(diffComponents(base, withChanges({ outputs: { output: 'codec:Model' } }))).toEqual([{ _tag: 'Outputs' }]);
    expect(describeChange({ _tag: 'Outputs' })).toBe('its declared outputs changed');
  });

  it('a changed code fingerprint lists the changed part names', () => {
    const parts = PARTS.map((p) => (p.name === 'fit' ? { ...p, hash: 'f2' } : p));
    const changes = diffComponents(stored(base), withChanges({ code: 'fingerprint:2222', codeParts: parts }));
    expect(changes).toEqual([{ _tag: 'Code', changed: ['fit'], added: [], removed: [] }]);
    expect(changes.map(describeChange)).toEqual(['its code changed (fit)']);
  });

  it('a changed code fingerprint lists changed, new and gone parts', () => {
    const parts = [...PARTS.filter((p) => p.name !== 'SCALE').map((p) => (p.name === 'svc_trainer' ? { ...p, hash: 's2' } : p)), part('normalize', 'function', 'n1')];
    const changes = diffComponents(base, withChanges({ code: 'fingerprint:3333', codeParts: parts }));
    expect(changes).toEqual([{ _tag: 'Code', changed: ['svc_trainer'], added: ['normalize'], removed: ['SCALE'] }]);
    expect(changes.map(describeChange)).toEqual(['its code changed (svc_trainer; normalize, new; SCALE, gone)']);
  });

  it('names the file when two changed parts share a name', () => {
    const parts = [...PARTS, part('fit', 'function', 'o1', '/project/other.ts')];
    const before = withChanges({ code: 'fingerprint:a', codeParts: parts });
    const after = withChanges({ code: 'fingerprint:b', codeParts: parts.map((p) => (p.file === '/project/other.ts' ? { ...p, hash: 'o2' } : p)) });
    expect(diffComponents(before, after)).toEqual([{ _tag: 'Code', changed: ['fit (/project/other.ts)'], added: [], removed: [] }]);
  });

  it('a changed fingerprint with equal parts (or none stored) still gives Code', () => {
    const same = diffComponents(base, withChanges({ code: 'fingerprint:9999' }));
    expect(same).toEqual([{ _tag: 'Code', changed: [], added: [], removed: [] }]);
    expect(same.map(describeChange)).toEqual(['its code changed']);
    const { codeParts: _none, ...old } = base;
    expect(diffComponents(old, withChanges({ code: 'fingerprint:9999' }))).toEqual([{ _tag: 'Code', changed: [], added: PARTS.map((p) => p.name).sort(), removed: [] }]);
  });

  it('a switch from code fingerprint to version, between versions, and back gives Version', () => {
    const { codeParts: _parts, ...noParts } = base;
    const v1 = { ...noParts, code: 'version:1' };
    const v2 = { ...noParts, code: 'version:2' };
    expect(diffComponents(base, v1)).toEqual([{ _tag: 'Version', after: '1' }]);
    expect(diffComponents(v1, v2)).toEqual([{ _tag: 'Version', before: '1', after: '2' }]);
    expect(diffComponents(v2, base)).toEqual([{ _tag: 'Version', before: '2' }]);
    expect(diffComponents(v1, v1)).toEqual([]);
    expect(describeChange({ _tag: 'Version', after: '1' })).toBe('version changed (unset -> 1)');
    expect(describeChange({ _tag: 'Version', before: '1', after: '2' })).toBe('version changed (1 -> 2)');
    expect(describeChange({ _tag: 'Version', before: '2' })).toBe('version changed (2 -> unset)');
  });

  it('reports several changes in a fixed order: code, parameters, inputs, files, dependencies, cacheKey, outputs', () => {
    const now: KeyComponents = {
      code: 'version:2',
      parameters: { gamma: { digest: 'g2', preview: '0.1' }, C: { digest: 'c2', preview: '2' } },
      inputs: { X_train: { digest: 'x2', step: 'training_data_loader', output: 'X_train' }, y_train: base.inputs.y_train as KeyComponents['inputs'][string] },
      outputs: { model: 'auto' },
      dependsOn: { tokenizer: 't2' },
      files: { 'data/labels.csv': 'f2' },
      cacheKey: 'etag-2',
    };
    expect(diffComponents(base, now).map((c) => c._tag)).toEqual(['Version', 'Parameter', 'Parameter', 'Input', 'File', 'DependsOn', 'CacheKey', 'Outputs']);
    expect(diffComponents(base, now).filter((c) => c._tag === 'Parameter').map((c) => (c as { name: string }).name)).toEqual(['C', 'gamma']);
  });
});

describe('diffComponents on garbage stored components', () => {
  it.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['a string', 'components'],
    ['an empty array', []],
    ['an array', [1, 2, 3]],
    ['wrong types inside', { code: 5, codeParts: [null, 3, { name: 1 }, 'x'], parameters: [1], inputs: 'x', outputs: 7, dependsOn: null, files: true, cacheKey: 12 }],
    ['null entries', { code: base.code, codeParts: null, parameters: { gamma: null }, inputs: { X_train: null }, outputs: { output: null }, dependsOn: { tokenizer: {} }, files: { 'data/labels.csv': [] } }],
  ])('%s never throws and describes what it can', (_, garbage) => {
    const changes = diffComponents(garbage, base);
    expect(changes.length).toBeGreaterThan(0);
    for (const c of changes) expect(typeof describeChange(c)).toBe('string');
  });

  it('anything stored never throws, and every change can be described (property)', () => {
    const componentsLike = fc.record(
      { code: fc.anything(), codeParts: fc.anything(), parameters: fc.anything(), inputs: fc.anything(), outputs: fc.anything(), dependsOn: fc.anything(), files: fc.anything(), cacheKey: fc.anything() },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.anything(), componentsLike), (garbage) => {
        const changes = diffComponents(garbage, base);
        for (const c of changes) expect(describeChange(c).length).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });
});

// laws

const NAMES = ['gamma', 'C', 'X_train', 'tol', 'a.b'] as const;
const digestArb = fc.constantFrom('d1', 'd2', 'd3');
const namesRecord = <T>(value: fc.Arbitrary<T>): fc.Arbitrary<Record<string, T>> => fc.dictionary(fc.constantFrom(...NAMES), value, { maxKeys: NAMES.length, noNullPrototype: true });
const partArb: fc.Arbitrary<FingerprintPart> = fc.record({ name: fc.constantFrom('step', 'a', 'b', 'SCALE'), kind: fc.constantFrom<FingerprintPartKind>('source', 'function', 'variable'), file: fc.constant(FILE), hash: digestArb });

const componentsArb: fc.Arbitrary<KeyComponents> = fc
  .record({
    version: fc.option(fc.constantFrom('1', '2'), { nil: undefined }),
    fingerprint: fc.constantFrom('fingerprint:1', 'fingerprint:2'),
    codeParts: fc.uniqueArray(partArb, { maxLength: 4, selector: (p) => `${p.kind === 'source'}${p.name}` }),
    parameters: namesRecord(fc.record({ digest: digestArb, preview: fc.constantFrom('1', '2', '"x"') })),
    inputs: namesRecord(fc.record({ digest: digestArb, step: fc.constantFrom('loader', 'prep'), output: fc.constantFrom('output', 'X') })),
    outputs: namesRecord(fc.constantFrom('auto', 'codec:M')),
    dependsOn: namesRecord(digestArb),
    files: namesRecord(digestArb),
    cacheKey: fc.option(fc.constantFrom('k1', 'k2'), { nil: undefined }),
  })
  .map(({ version, fingerprint, codeParts, cacheKey, ...rest }) => ({
    ...rest,
    ...(version === undefined ? { code: fingerprint, codeParts } : { code: `version:${version}` }),
    ...(cacheKey === undefined ? {} : { cacheKey }),
  }));

const differing = (a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>, digest: (x: unknown) => unknown): string[] =>
  [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => digest(a[k]) !== digest(b[k])).sort();

describe('diffComponents: laws', () => {
  it('components equal to themselves, and to their stored form, give no change (property)', () => {
    fc.assert(
      fc.property(componentsArb, (c) => {
        expect(diffComponents(c, c)).toEqual([]);
        expect(diffComponents(stored(c), c)).toEqual([]);
      }),
    );
  });

  it('reports exactly the components that differ (property)', () => {
    const d = (x: unknown) => (x as { digest?: unknown } | undefined)?.digest;
    const id = (x: unknown) => x;
    fc.assert(
      fc.property(componentsArb, componentsArb, (before, after) => {
        const changes = diffComponents(stored(before), after);
        const names = (tag: KeyChange['_tag']) => changes.filter((c) => c._tag === tag).map((c) => ('name' in c ? c.name : 'path' in c ? c.path : c._tag));
        expect(changes.filter((c) => c._tag === 'Code' || c._tag === 'Version')).toHaveLength(before.code === after.code ? 0 : 1);
        expect(names('Parameter')).toEqual(differing(before.parameters, after.parameters, d));
        expect(names('Input')).toEqual(differing(before.inputs, after.inputs, d));
        expect(names('File')).toEqual(differing(before.files, after.files, id));
        expect(names('DependsOn')).toEqual(differing(before.dependsOn, after.dependsOn, id));
        expect(names('CacheKey')).toHaveLength(before.cacheKey === after.cacheKey ? 0 : 1);
        expect(names('Outputs')).toHaveLength(differing(before.outputs, after.outputs, id).length === 0 ? 0 : 1);
      }),
    );
  });

  it('a change of one parameter gives exactly one Parameter change, with both previews (property)', () => {
    fc.assert(
      fc.property(componentsArb, fc.constantFrom(...NAMES), fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }), (c, name, p1, p2) => {
        const before = { ...c, parameters: { ...c.parameters, [name]: { digest: 'before', preview: p1 } } };
        const after = { ...c, parameters: { ...c.parameters, [name]: { digest: 'after', preview: p2 } } };
        const changes = diffComponents(stored(before), after);
        expect(changes).toEqual([{ _tag: 'Parameter', name, before: p1, after: p2 }]);
        expect(describeChange(changes[0] as KeyChange)).toBe(`parameter ${name} changed (${p1} -> ${p2})`);
      }),
    );
  });

  it('an input present only now is reported as added, one present only before as removed, whatever its name (property)', () => {
    const inputName = fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.constantFrom('toString', 'constructor', 'valueOf', 'hasOwnProperty', '__proto__'));
    const withInput = (name: string): KeyComponents['inputs'] => {
      const inputs: Record<string, KeyComponents['inputs'][string]> = {};
      Object.defineProperty(inputs, name, { value: { digest: 'i1', step: 'loader', output: 'output' }, enumerable: true, configurable: true, writable: true });
      return inputs;
    };
    fc.assert(
      fc.property(inputName, (name) => {
        const without = { ...base, inputs: {} };
        const withIt = { ...base, inputs: withInput(name) };
        expect(diffComponents(without, withIt)).toEqual([{ _tag: 'Input', name, step: 'loader', output: 'output', added: true, removed: false }]);
        expect(diffComponents(withIt, without)).toEqual([{ _tag: 'Input', name, added: false, removed: true }]);
      }),
    );
  });
});

describe('describeChange', () => {
  const cases: readonly (readonly [KeyChange, string])[] = [
    [{ _tag: 'Code', changed: ['b'], added: [], removed: [] }, 'its code changed (b)'],
    [{ _tag: 'Code', changed: [], added: [], removed: [] }, 'its code changed'],
    [{ _tag: 'Code', changed: ['a', 'b'], added: ['c'], removed: ['d'] }, 'its code changed (a; b; c, new; d, gone)'],
    [{ _tag: 'Version', before: '1', after: '2' }, 'version changed (1 -> 2)'],
    [{ _tag: 'Parameter', name: 'gamma', before: '0.002', after: '0.0001' }, 'parameter gamma changed (0.002 -> 0.0001)'],
    [{ _tag: 'Parameter', name: 'gamma', after: '0.1' }, 'parameter gamma was added (0.1)'],
    [{ _tag: 'Parameter', name: 'gamma', before: '0.1' }, 'parameter gamma was removed'],
    [{ _tag: 'Input', name: 'X_train', step: 'loader', output: 'X_train', added: false, removed: false }, 'input X_train changed (new content from loader)'],
    [{ _tag: 'Input', name: 'X_train', added: false, removed: false }, 'input X_train changed (new content from upstream)'],
    [{ _tag: 'Input', name: 'X_train', step: 'loader', output: 'X_train', added: true, removed: false }, 'input X_train was added'],
    [{ _tag: 'Input', name: 'X_train', added: false, removed: true }, 'input X_train was removed'],
    [{ _tag: 'File', path: 'data/train.csv' }, 'file data/train.csv changed'],
    [{ _tag: 'DependsOn', name: 'tokenizer' }, 'dependency tokenizer changed'],
    [{ _tag: 'CacheKey', before: 'a', after: 'b' }, 'its cacheKey changed (a -> b)'],
    [{ _tag: 'CacheKey', after: 'b' }, 'its cacheKey changed (unset -> b)'],
    [{ _tag: 'Outputs' }, 'its declared outputs changed'],
    [{ _tag: 'KeyFormat' }, 'the cache key format changed'],
  ];

  it.each(cases)('%j is described as %p', (change, text) => {
    expect(describeChange(change)).toBe(text);
  });

  it('covers every tag', () => {
    const tags: Record<KeyChange['_tag'], true> = { Code: true, Version: true, Parameter: true, Input: true, File: true, DependsOn: true, CacheKey: true, Outputs: true, KeyFormat: true };
    expect(new Set(cases.map(([c]) => c._tag))).toEqual(new Set(Object.keys(tags)));
  });
});
