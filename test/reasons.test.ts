import fc from 'fast-check';
import { describeChange, type KeyChange } from '../src/cache/components';
import { describeReason, type ExecutionReason } from '../src/cache/reasons';
import type { SettingSource } from '../src/settings/settings';

const LAYER_WORDS: readonly (readonly [SettingSource, string])[] = [
  ['step', 'step settings'],
  ['runtime', 'runtime options'],
  ['runtimeStep', 'runtime options for this step'],
  ['pipeline', 'pipeline settings'],
  ['default', 'default'],
];

const sourceArb = fc.constantFrom<SettingSource>('pipeline', 'step', 'runtime', 'runtimeStep', 'default');

const changeArb: fc.Arbitrary<KeyChange> = fc.oneof(
  fc.record({ _tag: fc.constant('Parameter' as const), name: fc.constantFrom('gamma', 'C'), before: fc.constantFrom('1', '2'), after: fc.constantFrom('3', '4') }),
  fc.record({ _tag: fc.constant('File' as const), path: fc.constantFrom('a.csv', 'data/b.csv') }),
  fc.record({ _tag: fc.constant('DependsOn' as const), name: fc.constantFrom('tokenizer', 'vocabulary') }),
  fc.record({ _tag: fc.constant('Code' as const), changed: fc.subarray(['a', 'b']), added: fc.subarray(['c']), removed: fc.subarray(['d']) }),
  fc.constant<KeyChange>({ _tag: 'Outputs' }),
  fc.constant<KeyChange>({ _tag: 'KeyFormat' }),
);

describe('describeReason', () => {
  it('NeverCached', () => {
    expect(describeReason({ _tag: 'NeverCached' })).toBe('it was never cached before');
  });

  it.each(LAYER_WORDS)('CacheDisabled by %s names the %s', (decidedBy, words) => {
    expect(describeReason({ _tag: 'CacheDisabled', decidedBy })).toBe(`caching is disabled by the ${words}`);
  });

  it.each(LAYER_WORDS)('Refresh by %s names the %s', (decidedBy, words) => {
    expect(describeReason({ _tag: 'Refresh', decidedBy })).toBe(`a refresh was asked for by the ${words}`);
  });

  it('gives each layer its own words (property)', () => {
    fc.assert(
      fc.property(sourceArb, sourceArb, fc.constantFrom('CacheDisabled' as const, 'Refresh' as const), (a, b, _tag) => {
        expect(describeReason({ _tag, decidedBy: a }) === describeReason({ _tag, decidedBy: b })).toBe(a === b);
      }),
    );
  });

  it.each<[number, number, string]>([
    [20, 1, 'its cache entry expired (20ms old, expiresAfter 1ms)'],
    [999, 500, 'its cache entry expired (999ms old, expiresAfter 500ms)'],
    [1500, 1000, 'its cache entry expired (1.5s old, expiresAfter 1.0s)'],
    [90_000, 60_000, 'its cache entry expired (1.5m old, expiresAfter 1.0m)'],
    [5_400_000, 3_600_000, 'its cache entry expired (1.5h old, expiresAfter 1.0h)'],
    [8 * 86_400_000, 7 * 86_400_000, 'its cache entry expired (8.0d old, expiresAfter 7.0d)'],
  ])('Expired %p ms old with expiresAfter %p ms', (ageMs, expiresAfterMs, text) => {
    expect(describeReason({ _tag: 'Expired', decidedBy: 'step', ageMs, expiresAfterMs })).toBe(text);
  });

  it('ArtifactsMissing', () => {
    expect(describeReason({ _tag: 'ArtifactsMissing' })).toBe('its cached artifacts are missing');
  });

  it('Repaired names the damage', () => {
    expect(describeReason({ _tag: 'Repaired', detail: 'artifact 3f2a… is truncated' })).toBe('its cached artifacts were damaged (artifact 3f2a… is truncated)');
  });

  it('KeyChanged with one change is that change in words', () => {
    expect(describeReason({ _tag: 'KeyChanged', changes: [{ _tag: 'Parameter', name: 'gamma', before: '0.002', after: '0.0001' }] })).toBe('parameter gamma changed (0.002 -> 0.0001)');
    expect(describeReason({ _tag: 'KeyChanged', changes: [{ _tag: 'Code', changed: ['b'], added: [], removed: [] }] })).toBe('its code changed (b)');
  });

  it('KeyChanged with several changes names them all, in order', () => {
    expect(
      describeReason({
        _tag: 'KeyChanged',
        changes: [
          { _tag: 'Parameter', name: 'gamma', before: '0.002', after: '0.0001' },
          { _tag: 'File', path: 'data/labels.csv' },
        ],
      }),
    ).toBe('parameter gamma changed (0.002 -> 0.0001), and file data/labels.csv changed');
  });

  it('KeyChanged with no change still says the key changed', () => {
    expect(describeReason({ _tag: 'KeyChanged', changes: [] })).toBe('its cache key changed');
  });

  it('KeyChanged contains every change description, in order (property)', () => {
    fc.assert(
      fc.property(fc.array(changeArb, { minLength: 1, maxLength: 4 }), (changes) => {
        const text = describeReason({ _tag: 'KeyChanged', changes });
        let from = 0;
        for (const c of changes) {
          const at = text.indexOf(describeChange(c), from);
          expect(at).toBeGreaterThanOrEqual(from);
          from = at + describeChange(c).length;
        }
        expect(from).toBe(text.length);
      }),
    );
  });

  it('describes every tag with a non-empty sentence', () => {
    const oneOfEach: Record<ExecutionReason['_tag'], ExecutionReason> = {
      NeverCached: { _tag: 'NeverCached' },
      CacheDisabled: { _tag: 'CacheDisabled', decidedBy: 'runtime' },
      Refresh: { _tag: 'Refresh', decidedBy: 'runtimeStep' },
      Expired: { _tag: 'Expired', decidedBy: 'pipeline', ageMs: 5, expiresAfterMs: 1 },
      ArtifactsMissing: { _tag: 'ArtifactsMissing' },
      Repaired: { _tag: 'Repaired', detail: 'x' },
      KeyChanged: { _tag: 'KeyChanged', changes: [{ _tag: 'KeyFormat' }] },
    };
    const texts = Object.values(oneOfEach).map(describeReason);
    for (const t of texts) expect(t.length).toBeGreaterThan(0);
    expect(new Set(texts).size).toBe(texts.length);
  });
});
