import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import {
  DEFAULT_CACHE_SETTINGS,
  SETTINGS_LAYERS,
  decideCache,
  mergeSettings,
  preview,
  resolveSettings,
  validateSettings,
  type CacheLookup,
  type CacheSettings,
  type SettingsLayer,
  type SettingsLayerName,
} from '../src/settings/settings';

// arbitraries

/** A settings object whose enableCache is true, false, undefined, or absent. */
const settingsArb: fc.Arbitrary<CacheSettings> = fc.constantFrom<CacheSettings>({ enableCache: true }, { enableCache: false }, { enableCache: undefined }, {});

/** For each layer name in precedence order, maybe a layer. */
const layersArb: fc.Arbitrary<SettingsLayer[]> = fc
  .tuple(...SETTINGS_LAYERS.map((layer) => fc.option(settingsArb.map((settings): SettingsLayer => ({ layer, settings })), { nil: undefined })))
  .map((ls) => ls.filter((l): l is SettingsLayer => l !== undefined));

/** Layers in precedence order with repetitions allowed (several layers of the same name). */
const manyLayersArb: fc.Arbitrary<SettingsLayer[]> = fc
  .array(fc.tuple(fc.integer({ min: 0, max: SETTINGS_LAYERS.length - 1 }), settingsArb), { maxLength: 8 })
  .map((xs) => xs.sort((a, b) => a[0] - b[0]).map(([i, settings]) => ({ layer: SETTINGS_LAYERS[i] as SettingsLayerName, settings })));

const lookupArb: fc.Arbitrary<CacheLookup> = fc.constantFrom<CacheLookup>({ _tag: 'Hit', ageMs: 0 }, { _tag: 'Miss' });

const allUndefinedLayersArb: fc.Arbitrary<SettingsLayer[]> = fc.array(
  fc.record({ layer: fc.constantFrom(...SETTINGS_LAYERS), settings: fc.constantFrom<CacheSettings>({}, { enableCache: undefined }) }),
  { maxLength: 5 },
);

const bothLayerArbs = fc.oneof(layersArb, manyLayersArb);

describe('SETTINGS_LAYERS', () => {
  it('lists pipeline < step < runtime < runtime for one step', () => {
    expect(SETTINGS_LAYERS).toEqual(['pipeline', 'step', 'runtime', 'runtimeStep']);
  });

  it('defaults to caching enabled', () => {
    expect(DEFAULT_CACHE_SETTINGS.enableCache).toBe(true);
  });
});

describe('resolveSettings: laws', () => {
  it('the last layer that defines enableCache wins and is reported as the source', () => {
    fc.assert(
      fc.property(bothLayerArbs, (layers) => {
        const definers = layers.filter((l) => l.settings.enableCache !== undefined);
        const last = definers[definers.length - 1];
        const r = resolveSettings(layers);
        if (last === undefined) {
          expect(r.settings.enableCache).toBe(DEFAULT_CACHE_SETTINGS.enableCache);
          expect(r.sources.enableCache).toBe('default');
        } else {
          expect(r.settings.enableCache).toBe(last.settings.enableCache);
          expect(r.sources.enableCache).toBe(last.layer);
        }
      }),
    );
  });

  it('appending a layer that defines enableCache makes that layer decide', () => {
    fc.assert(
      fc.property(bothLayerArbs, fc.constantFrom(...SETTINGS_LAYERS), fc.boolean(), (layers, layer, value) => {
        const r = resolveSettings([...layers, { layer, settings: { enableCache: value } }]);
        expect(r.settings.enableCache).toBe(value);
        expect(r.sources.enableCache).toBe(layer);
      }),
    );
  });

  it('undefined never overrides: removing layers that define nothing changes nothing', () => {
    fc.assert(
      fc.property(bothLayerArbs, (layers) => {
        const defining = layers.filter((l) => l.settings.enableCache !== undefined);
        expect(resolveSettings(defining)).toEqual(resolveSettings(layers));
      }),
    );
  });

  it('undefined never overrides: inserting all-undefined layers anywhere changes nothing', () => {
    fc.assert(
      fc.property(bothLayerArbs, allUndefinedLayersArb, fc.nat(), (layers, extra, at) => {
        const i = layers.length === 0 ? 0 : at % (layers.length + 1);
        const widened = [...layers.slice(0, i), ...extra, ...layers.slice(i)];
        expect(resolveSettings(widened)).toEqual(resolveSettings(layers));
      }),
    );
  });

  it('a later layer beats an earlier one whatever their values', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), (low, high) => {
        const r = resolveSettings([
          { layer: 'pipeline', settings: { enableCache: low } },
          { layer: 'step', settings: { enableCache: high } },
        ]);
        expect(r.settings.enableCache).toBe(high);
        expect(r.sources.enableCache).toBe('step');
        const r2 = resolveSettings([
          { layer: 'step', settings: { enableCache: low } },
          { layer: 'runtime', settings: { enableCache: high } },
          { layer: 'runtime', settings: {} },
        ]);
        expect(r2.settings.enableCache).toBe(high);
        expect(r2.sources.enableCache).toBe('runtime');
      }),
    );
  });
});

describe('decideCache: laws', () => {
  it('a Miss always executes, whatever the settings', () => {
    fc.assert(
      fc.property(bothLayerArbs, (layers) => {
        expect(decideCache(layers, { _tag: 'Miss' })._tag).toBe('Execute');
      }),
    );
  });

  it('a Miss with caching enabled is decided by the key', () => {
    fc.assert(
      fc.property(bothLayerArbs, (layers) => {
        fc.pre(resolveSettings(layers).settings.enableCache);
        expect(decideCache(layers, { _tag: 'Miss' })).toEqual({ _tag: 'Execute', reason: 'no-entry', decidedBy: 'key' });
      }),
    );
  });

  it('UseCache only for a Hit with caching enabled, decided by the layer that enabled it', () => {
    fc.assert(
      fc.property(bothLayerArbs, lookupArb, (layers, lookup) => {
        const { settings, sources } = resolveSettings(layers);
        const d = decideCache(layers, lookup);
        if (lookup._tag === 'Hit' && settings.enableCache) expect(d).toEqual({ _tag: 'UseCache', decidedBy: sources.enableCache });
        else expect(d._tag).toBe('Execute');
      }),
    );
  });

  it('caching disabled by a layer executes and names that layer', () => {
    fc.assert(
      fc.property(bothLayerArbs, lookupArb, fc.constantFrom(...SETTINGS_LAYERS), (layers, lookup, layer) => {
        const d = decideCache([...layers, { layer, settings: { enableCache: false } }], lookup);
        expect(d).toEqual({ _tag: 'Execute', reason: 'cache-disabled', decidedBy: layer });
      }),
    );
  });

  it('all-undefined layers and a Hit use the cache, decided by the default', () => {
    fc.assert(
      fc.property(allUndefinedLayersArb, (layers) => {
        expect(decideCache(layers, { _tag: 'Hit', ageMs: 0 })).toEqual({ _tag: 'UseCache', decidedBy: 'default' });
      }),
    );
  });

  it('adding all-undefined layers never changes the decision', () => {
    fc.assert(
      fc.property(bothLayerArbs, allUndefinedLayersArb, lookupArb, (layers, extra, lookup) => {
        expect(decideCache([...layers, ...extra], lookup)).toEqual(decideCache(layers, lookup));
      }),
    );
  });
});

describe('mergeSettings: laws', () => {
  it('is associative', () => {
    fc.assert(
      fc.property(settingsArb, settingsArb, settingsArb, (a, b, c) => {
        const left = mergeSettings(mergeSettings(a, b), c);
        const right = mergeSettings(a, mergeSettings(b, c));
        expect(left.enableCache).toBe(right.enableCache);
        expect(left).toEqual(right);
      }),
    );
  });

  it('has {} as identity on both sides', () => {
    fc.assert(
      fc.property(settingsArb, (a) => {
        expect(mergeSettings(a, {}).enableCache).toBe(a.enableCache);
        expect(mergeSettings({}, a).enableCache).toBe(a.enableCache);
        expect(mergeSettings(a, {})).toEqual(a);
        expect(mergeSettings({}, a)).toEqual(a);
      }),
    );
  });

  it('defined fields of the later settings win; undefined ones do not override', () => {
    fc.assert(
      fc.property(settingsArb, settingsArb, (a, b) => {
        expect(mergeSettings(a, b).enableCache).toBe(b.enableCache !== undefined ? b.enableCache : a.enableCache);
      }),
    );
  });

  it('agrees with resolveSettings: merging layers then resolving equals resolving the layers', () => {
    fc.assert(
      fc.property(fc.array(settingsArb, { maxLength: 5 }), (xs) => {
        const merged = xs.reduce(mergeSettings, {});
        expect(resolveSettings([{ layer: 'step', settings: merged }]).settings).toEqual(resolveSettings(xs.map((settings) => ({ layer: 'step', settings }))).settings);
      }),
    );
  });

  it('returns a frozen object and leaves its arguments unchanged', () => {
    const a = { enableCache: true };
    const b = { enableCache: false };
    const m = mergeSettings(a, b);
    expect(Object.isFrozen(m)).toBe(true);
    expect(m).not.toBe(a);
    expect(a).toEqual({ enableCache: true });
    expect(b).toEqual({ enableCache: false });
  });
});

describe('validateSettings', () => {
  it('rejects enableCache: "yes", naming the field and what it allows', () => {
    const r = validateSettings({ enableCache: 'yes' }, 'step svc_trainer');
    expect(E.isLeft(r)).toBe(true);
    if (E.isLeft(r)) {
      expect(r.left.field).toBe('enableCache');
      expect(r.left.message).toContain('enableCache');
      expect(r.left.message).toContain('true or false');
      expect(r.left.message).toContain('"yes"');
      expect(r.left.message).toContain('step svc_trainer');
    }
  });

  it.each([[1], [0], [null], ['true'], [[true]], [{}]])('rejects enableCache: %p', (value) => {
    const r = validateSettings({ enableCache: value }, 'x');
    expect(E.isLeft(r) && r.left.field).toBe('enableCache');
  });

  it('rejects an unknown option, naming it and listing the known options', () => {
    const r = validateSettings({ enableCaching: false }, 'pipeline p');
    expect(E.isLeft(r)).toBe(true);
    if (E.isLeft(r)) {
      expect(r.left.field).toBe('enableCaching');
      expect(r.left.message).toContain('enableCaching');
      expect(r.left.message).toMatch(/known options: enableCache\b/);
    }
  });

  it('rejects an unknown option named like a property of Object.prototype', () => {
    const r = validateSettings({ constructor: false }, 'step s');
    expect(E.isLeft(r)).toBe(true);
    if (E.isLeft(r)) expect(r.left.field).toBe('constructor');
  });

  it('rejects every key that is not a known option, including names found on Object.prototype', () => {
    const unknownKey = fc.oneof(
      fc.string({ minLength: 1 }).filter((k) => k !== 'enableCache'),
      fc.constantFrom('toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__', 'isPrototypeOf'),
    );
    fc.assert(
      fc.property(unknownKey, fc.boolean(), (key, value) => {
        const input: Record<string, unknown> = {};
        Object.defineProperty(input, key, { value, enumerable: true, configurable: true, writable: true });
        const r = validateSettings(input, 'step s');
        expect(E.isLeft(r) && r.left.field).toBe(key);
      }),
    );
  });

  it.each([[null], [undefined], ['enableCache'], [42], [true], [[{ enableCache: true }]]])('rejects the non-object %p', (input) => {
    const r = validateSettings(input, 'step s');
    expect(E.isLeft(r)).toBe(true);
    if (E.isLeft(r)) expect(r.left.message).toMatch(/must be an object/);
  });

  it.each<[unknown, CacheSettings]>([
    [{}, {}],
    [{ enableCache: true }, { enableCache: true }],
    [{ enableCache: false }, { enableCache: false }],
  ])('accepts %p', (input, expected) => {
    const r = validateSettings(input, 'step s');
    expect(r).toEqual(E.right(expected));
    if (E.isRight(r)) expect(Object.isFrozen(r.right)).toBe(true);
  });

  it('accepts enableCache: undefined as leaving the field unset', () => {
    const r = validateSettings({ enableCache: undefined }, 'step s');
    expect(E.isRight(r) && r.right.enableCache).toBeUndefined();
    expect(E.isRight(r)).toBe(true);
  });

  it('accepts exactly the booleans and undefined for enableCache (property)', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const r = validateSettings({ enableCache: value }, 'step s');
        expect(E.isRight(r)).toBe(value === undefined || typeof value === 'boolean');
      }),
      { numRuns: 200 },
    );
  });
});

describe('preview', () => {
  it('renders values readably and shortens long ones', () => {
    expect(preview('yes')).toBe('"yes"');
    expect(preview(-0)).toBe('-0');
    expect(preview(NaN)).toBe('NaN');
    expect(preview(2n)).toBe('2n');
    expect(preview(undefined)).toBe('undefined');
    const long = preview('x'.repeat(500), 20);
    expect(long).toHaveLength(20);
    expect(long.endsWith('…')).toBe(true);
  });

  it('does not throw on values JSON cannot render', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(typeof preview(cyclic)).toBe('string');
    expect(typeof preview(Symbol('s'))).toBe('string');
  });
});
