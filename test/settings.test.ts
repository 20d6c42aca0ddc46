import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { parseDuration } from '../src/format/duration';
import {
  CACHE_SETTING_NAMES,
  DEFAULT_CACHE_SETTINGS,
  SETTINGS_LAYERS,
  decideCache,
  mergePipelineSettings,
  mergeSettings,
  preview,
  resolveSettings,
  settingsLayers,
  validatePipelineSettings,
  validateSettings,
  type CacheLookup,
  type CacheSettingName,
  type CacheSettings,
  type PipelineSettings,
  type SettingsLayer,
  type SettingsLayerName,
  type StepSettingsSources,
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
  it('lists pipeline < step < run config < runtime < runtime for one step', () => {
    expect(SETTINGS_LAYERS).toEqual(['pipeline', 'step', 'runConfig', 'runtime', 'runtimeStep']);
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
        expect(decideCache(resolveSettings(layers), { _tag: 'Miss' })._tag).toBe('Execute');
      }),
    );
  });

  it('a Miss with caching enabled is decided by the key', () => {
    fc.assert(
      fc.property(bothLayerArbs, (layers) => {
        fc.pre(resolveSettings(layers).settings.enableCache);
        expect(decideCache(resolveSettings(layers), { _tag: 'Miss' })).toEqual({ _tag: 'Execute', reason: 'no-entry', decidedBy: 'key' });
      }),
    );
  });

  it('UseCache only for a Hit with caching enabled, decided by the layer that enabled it', () => {
    fc.assert(
      fc.property(bothLayerArbs, lookupArb, (layers, lookup) => {
        const { settings, sources } = resolveSettings(layers);
        const d = decideCache(resolveSettings(layers), lookup);
        if (lookup._tag === 'Hit' && settings.enableCache) expect(d).toEqual({ _tag: 'UseCache', decidedBy: sources.enableCache });
        else expect(d._tag).toBe('Execute');
      }),
    );
  });

  it('caching disabled by a layer executes and names that layer', () => {
    fc.assert(
      fc.property(bothLayerArbs, lookupArb, fc.constantFrom(...SETTINGS_LAYERS), (layers, lookup, layer) => {
        const d = decideCache(resolveSettings([...layers, { layer, settings: { enableCache: false } }]), lookup);
        expect(d).toEqual({ _tag: 'Execute', reason: 'cache-disabled', decidedBy: layer });
      }),
    );
  });

  it('all-undefined layers and a Hit use the cache, decided by the default', () => {
    fc.assert(
      fc.property(allUndefinedLayersArb, (layers) => {
        expect(decideCache(resolveSettings(layers), { _tag: 'Hit', ageMs: 0 })).toEqual({ _tag: 'UseCache', decidedBy: 'default' });
      }),
    );
  });

  it('adding all-undefined layers never changes the decision', () => {
    fc.assert(
      fc.property(bothLayerArbs, allUndefinedLayersArb, lookupArb, (layers, extra, lookup) => {
        expect(decideCache(resolveSettings([...layers, ...extra]), lookup)).toEqual(decideCache(resolveSettings(layers), lookup));
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

// every field of CacheSettings

type Defined<K extends CacheSettingName> = Exclude<CacheSettings[K], undefined>;

const cacheKeyA = (): string => 'a';
const cacheKeyB = async (): Promise<string> => 'b';
const pathArb = fc.string({ minLength: 1, maxLength: 8 });
const DURATIONS = ['90s', '30m', '1.5h', '7d', '250ms', '12h'] as const;

/** A defined value for each field, of every form the field allows. */
const FIELD_VALUES: { readonly [K in CacheSettingName]: fc.Arbitrary<Defined<K>> } = {
  enableCache: fc.boolean(),
  version: fc.string({ minLength: 1, maxLength: 8 }),
  dependsOn: fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.integer(), fc.string(), fc.constant(cacheKeyA)), { maxKeys: 3, noNullPrototype: true }),
  files: fc.array(pathArb, { maxLength: 3 }),
  ignoredInputs: fc.array(pathArb, { maxLength: 3 }),
  expiresAfter: fc.oneof(fc.integer({ min: 0, max: 10 * 86_400_000 }), fc.constantFrom(...DURATIONS)),
  cacheKey: fc.constantFrom<Defined<'cacheKey'>>(cacheKeyA, cacheKeyB),
  refresh: fc.boolean(),
  lockTimeout: fc.oneof(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.constantFrom(...DURATIONS)),
  timeout: fc.oneof(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.constantFrom(...DURATIONS)),
  retries: fc.integer({ min: 0, max: 100 }),
};

/** Settings where each field is absent, explicitly undefined, or set. */
const fullSettingsArb: fc.Arbitrary<CacheSettings> = fc.record(
  Object.fromEntries(CACHE_SETTING_NAMES.map((name) => [name, fc.option(FIELD_VALUES[name] as fc.Arbitrary<unknown>, { nil: undefined, freq: 3 })])),
  { requiredKeys: [], noNullPrototype: true },
) as fc.Arbitrary<CacheSettings>;

/** Settings where every field is absent or explicitly undefined. */
const undefinedSettingsArb: fc.Arbitrary<CacheSettings> = fc
  .subarray([...CACHE_SETTING_NAMES])
  .map((names) => Object.fromEntries(names.map((n) => [n, undefined])) as CacheSettings);

const layerNameArb = fc.integer({ min: 0, max: SETTINGS_LAYERS.length - 1 });

/** Layers in SETTINGS_LAYERS order, several of one name allowed. */
const fullLayersArb: fc.Arbitrary<SettingsLayer[]> = fc
  .array(fc.tuple(layerNameArb, fullSettingsArb), { maxLength: 6 })
  .map((xs) => xs.sort((a, b) => a[0] - b[0]).map(([i, settings]) => ({ layer: SETTINGS_LAYERS[i] as SettingsLayerName, settings })));

const undefinedLayersArb: fc.Arbitrary<SettingsLayer[]> = fc.array(
  fc.record({ layer: fc.constantFrom(...SETTINGS_LAYERS), settings: undefinedSettingsArb }),
  { maxLength: 4 },
);

const fullLookupArb: fc.Arbitrary<CacheLookup> = fc.oneof(
  fc.constant<CacheLookup>({ _tag: 'Miss' }),
  fc.integer({ min: 0, max: 10 * 86_400_000 }).map((ageMs): CacheLookup => ({ _tag: 'Hit', ageMs })),
);

const withoutUndefined = (s: CacheSettings): CacheSettings => Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as CacheSettings;

/** What resolveSettings must give for a field set to `value` by the last layer defining it. */
const DURATION_SETTINGS: readonly CacheSettingName[] = ['expiresAfter', 'lockTimeout', 'timeout'];
const resolvedValue = (name: CacheSettingName, value: unknown): unknown => (DURATION_SETTINGS.includes(name) ? parseDuration(value) : value);

const DEFAULTS: Partial<Record<CacheSettingName, unknown>> = { enableCache: true, refresh: false, retries: 0 };

describe('CacheSettings fields', () => {
  it('are exactly enableCache, version, dependsOn, files, ignoredInputs, expiresAfter, cacheKey, refresh, lockTimeout, timeout and retries', () => {
    expect([...CACHE_SETTING_NAMES].sort()).toEqual(['cacheKey', 'dependsOn', 'enableCache', 'expiresAfter', 'files', 'ignoredInputs', 'lockTimeout', 'refresh', 'retries', 'timeout', 'version']);
  });
});

describe('resolveSettings over every field: laws', () => {
  it('for every field, the last layer defining it wins and is the reported source', () => {
    fc.assert(
      fc.property(fullLayersArb, (layers) => {
        const r = resolveSettings(layers);
        for (const name of CACHE_SETTING_NAMES) {
          const last = layers.filter((l) => l.settings[name] !== undefined).at(-1);
          if (last === undefined) {
            expect(r.sources[name]).toBe('default');
            expect(r.settings[name]).toBe(DEFAULTS[name]);
          } else {
            expect(r.sources[name]).toBe(last.layer);
            expect(r.settings[name]).toBe(resolvedValue(name, last.settings[name]));
          }
        }
      }),
    );
  });

  it('appending a layer that defines one field makes it decide that field and leaves the others as they were', () => {
    const fieldAndValue = fc.constantFrom(...CACHE_SETTING_NAMES).chain((name) => (FIELD_VALUES[name] as fc.Arbitrary<unknown>).map((value) => [name, value] as const));
    fc.assert(
      fc.property(fullLayersArb, fc.constantFrom(...SETTINGS_LAYERS), fieldAndValue, (layers, layer, [name, value]) => {
        const before = resolveSettings(layers);
        const after = resolveSettings([...layers, { layer, settings: { [name]: value } as CacheSettings }]);
        expect(after.sources[name]).toBe(layer);
        expect(after.settings[name]).toBe(resolvedValue(name, value));
        for (const other of CACHE_SETTING_NAMES.filter((n) => n !== name)) {
          expect(after.sources[other]).toBe(before.sources[other]);
          expect(after.settings[other]).toBe(before.settings[other]);
        }
      }),
    );
  });

  it('undefined never overrides: removing undefined fields from every layer changes nothing', () => {
    fc.assert(
      fc.property(fullLayersArb, (layers) => {
        expect(resolveSettings(layers.map((l) => ({ layer: l.layer, settings: withoutUndefined(l.settings) })))).toEqual(resolveSettings(layers));
      }),
    );
  });

  it('undefined never overrides: removing layers that define nothing changes nothing', () => {
    fc.assert(
      fc.property(fullLayersArb, (layers) => {
        const defining = layers.filter((l) => Object.values(l.settings).some((v) => v !== undefined));
        expect(resolveSettings(defining)).toEqual(resolveSettings(layers));
      }),
    );
  });

  it('undefined never overrides: inserting all-undefined layers anywhere changes nothing', () => {
    fc.assert(
      fc.property(fullLayersArb, undefinedLayersArb, fc.nat(), (layers, extra, at) => {
        const i = at % (layers.length + 1);
        expect(resolveSettings([...layers.slice(0, i), ...extra, ...layers.slice(i)])).toEqual(resolveSettings(layers));
      }),
    );
  });

  it('setting a field to undefined in a later layer keeps the earlier value', () => {
    fc.assert(
      fc.property(fullLayersArb, fc.constantFrom(...CACHE_SETTING_NAMES), fc.constantFrom(...SETTINGS_LAYERS), (layers, name, layer) => {
        const r = resolveSettings([...layers, { layer, settings: { [name]: undefined } }]);
        expect(r.sources[name]).toBe(resolveSettings(layers).sources[name]);
        expect(r.settings[name]).toBe(resolveSettings(layers).settings[name]);
      }),
    );
  });
});

describe('mergeSettings over every field: laws', () => {
  it('is associative', () => {
    fc.assert(
      fc.property(fullSettingsArb, fullSettingsArb, fullSettingsArb, (a, b, c) => {
        const left = mergeSettings(mergeSettings(a, b), c);
        const right = mergeSettings(a, mergeSettings(b, c));
        expect(left).toEqual(right);
        for (const name of CACHE_SETTING_NAMES) expect(left[name]).toBe(right[name]);
      }),
    );
  });

  it('has {} as identity on both sides', () => {
    fc.assert(
      fc.property(fullSettingsArb, (a) => {
        for (const merged of [mergeSettings(a, {}), mergeSettings({}, a)]) {
          expect(merged).toEqual(withoutUndefined(a));
          expect(Object.keys(merged).sort()).toEqual(Object.keys(withoutUndefined(a)).sort());
        }
      }),
    );
  });

  it('a defined field of the later settings wins; an undefined one keeps the earlier value', () => {
    fc.assert(
      fc.property(fullSettingsArb, fullSettingsArb, (a, b) => {
        const m = mergeSettings(a, b);
        for (const name of CACHE_SETTING_NAMES) expect(m[name]).toBe(b[name] !== undefined ? b[name] : a[name]);
      }),
    );
  });

  it('agrees with resolveSettings: resolving [a, b] equals resolving [merge(a, b)]', () => {
    fc.assert(
      fc.property(fullSettingsArb, fullSettingsArb, layerNameArb, layerNameArb, (a, b, i, j) => {
        const [low, high] = [SETTINGS_LAYERS[Math.min(i, j)] as SettingsLayerName, SETTINGS_LAYERS[Math.max(i, j)] as SettingsLayerName];
        const layered = resolveSettings([
          { layer: low, settings: a },
          { layer: high, settings: b },
        ]);
        const merged = resolveSettings([{ layer: high, settings: mergeSettings(a, b) }]);
        expect(merged.settings).toEqual(layered.settings);
        for (const name of CACHE_SETTING_NAMES) expect(merged.settings[name]).toBe(layered.settings[name]);
      }),
    );
  });

  it('agrees with resolveSettings over any number of layers (fold)', () => {
    fc.assert(
      fc.property(fc.array(fullSettingsArb, { maxLength: 6 }), (xs) => {
        const merged = resolveSettings([{ layer: 'runtime', settings: xs.reduce(mergeSettings, {}) }]).settings;
        const layered = resolveSettings(xs.map((settings) => ({ layer: 'runtime', settings }))).settings;
        expect(merged).toEqual(layered);
      }),
    );
  });
});

describe('decideCache over every field: laws', () => {
  it('caching disabled executes with cache-disabled, decided by the layer that set enableCache, for any lookup', () => {
    fc.assert(
      fc.property(fullLayersArb, fullSettingsArb, fc.constantFrom(...SETTINGS_LAYERS), fullLookupArb, (layers, extra, layer, lookup) => {
        const all = [...layers, { layer, settings: { ...extra, enableCache: false } }];
        expect(decideCache(resolveSettings(all), lookup)).toEqual({ _tag: 'Execute', reason: 'cache-disabled', decidedBy: layer });
      }),
    );
  });

  it('whenever the resolved enableCache is false, the decision names the source of enableCache', () => {
    fc.assert(
      fc.property(fullLayersArb, fullLookupArb, (layers, lookup) => {
        const { settings, sources } = resolveSettings(layers);
        fc.pre(!settings.enableCache);
        expect(decideCache(resolveSettings(layers), lookup)).toEqual({ _tag: 'Execute', reason: 'cache-disabled', decidedBy: sources.enableCache });
      }),
    );
  });

  it('refresh executes with refresh, decided by the layer that asked for it, unless caching is disabled', () => {
    fc.assert(
      fc.property(fullLayersArb, fc.constantFrom(...SETTINGS_LAYERS), fullLookupArb, (layers, layer, lookup) => {
        const all = [...layers, { layer, settings: { refresh: true } }];
        const d = decideCache(resolveSettings(all), lookup);
        const { settings, sources } = resolveSettings(layers);
        if (settings.enableCache) expect(d).toEqual({ _tag: 'Execute', reason: 'refresh', decidedBy: layer });
        else expect(d).toEqual({ _tag: 'Execute', reason: 'cache-disabled', decidedBy: sources.enableCache });
      }),
    );
  });

  it('nothing makes a changed key a hit: a Miss never gives UseCache, whatever the layers', () => {
    fc.assert(
      fc.property(fullLayersArb, (layers) => {
        const d = decideCache(resolveSettings(layers), { _tag: 'Miss' });
        expect(d._tag).toBe('Execute');
        const { settings } = resolveSettings(layers);
        if (settings.enableCache && !settings.refresh) expect(d).toEqual({ _tag: 'Execute', reason: 'no-entry', decidedBy: 'key' });
      }),
    );
  });

  it('a Hit older than expiresAfter executes with expired, its age and the limit', () => {
    fc.assert(
      fc.property(fullLayersArb, fc.constantFrom(...SETTINGS_LAYERS), FIELD_VALUES.expiresAfter, fc.integer({ min: 1, max: 86_400_000 }), (layers, layer, expiresAfter, over) => {
        const all = [...layers, { layer, settings: { expiresAfter } }];
        const { settings } = resolveSettings(all);
        fc.pre(settings.enableCache && !settings.refresh);
        const limit = parseDuration(expiresAfter) as number;
        expect(decideCache(resolveSettings(all), { _tag: 'Hit', ageMs: limit + over })).toEqual({ _tag: 'Execute', reason: 'expired', decidedBy: layer, ageMs: limit + over, expiresAfterMs: limit });
      }),
    );
  });

  it('a Hit no older than expiresAfter (or with no expiresAfter) uses the cache, decided by the source of enableCache', () => {
    fc.assert(
      fc.property(fullLayersArb, fc.double({ min: 0, max: 1, noNaN: true }), (layers, fraction) => {
        const { settings, sources } = resolveSettings(layers);
        fc.pre(settings.enableCache && !settings.refresh);
        const ageMs = settings.expiresAfter === undefined ? Math.round(fraction * 1e9) : Math.floor(fraction * settings.expiresAfter);
        expect(decideCache(resolveSettings(layers), { _tag: 'Hit', ageMs })).toEqual({ _tag: 'UseCache', decidedBy: sources.enableCache });
      }),
    );
  });

  it('all-undefined layers and a Hit of any age use the cache, decided by the default', () => {
    fc.assert(
      fc.property(undefinedLayersArb, fc.nat(), (layers, ageMs) => {
        expect(decideCache(resolveSettings(layers), { _tag: 'Hit', ageMs })).toEqual({ _tag: 'UseCache', decidedBy: 'default' });
      }),
    );
  });

  it('inserting all-undefined layers never changes the decision', () => {
    fc.assert(
      fc.property(fullLayersArb, undefinedLayersArb, fc.nat(), fullLookupArb, (layers, extra, at, lookup) => {
        const i = at % (layers.length + 1);
        expect(decideCache(resolveSettings([...layers.slice(0, i), ...extra, ...layers.slice(i)]), lookup)).toEqual(decideCache(resolveSettings(layers), lookup));
      }),
    );
  });
});

describe('validateSettings: every field', () => {
  const leftOf = (input: unknown) => {
    const r = validateSettings(input, 'step svc_trainer');
    if (E.isRight(r)) throw new Error(`expected a Left for ${preview(input)}`);
    return r.left;
  };

  it('enableCache: "yes" names enableCache and "true or false"', () => {
    const e = leftOf({ enableCache: 'yes' });
    expect(e.field).toBe('enableCache');
    expect(e.message).toContain('enableCache');
    expect(e.message).toContain('true or false');
  });

  it('expiresAfter: -1 names expiresAfter and the allowed forms', () => {
    const e = leftOf({ expiresAfter: -1 });
    expect(e.field).toBe('expiresAfter');
    expect(e.message).toContain('expiresAfter');
    expect(e.message).toContain('-1');
    expect(e.message).toContain('milliseconds');
    for (const form of ["'90s'", "'30m'", "'12h'", "'7d'"]) expect(e.message).toContain(form);
  });

  it.each<[string, unknown]>([
    ['version', ''],
    ['version', 2],
    ['files', 'a.csv'],
    ['files', ['']],
    ['ignoredInputs', 'progress'],
    ['dependsOn', ['tokenizer']],
    ['dependsOn', null],
    ['cacheKey', 'x'],
    ['refresh', 'yes'],
    ['expiresAfter', '5 minutes'],
    ['expiresAfter', NaN],
  ])('%s: %p is rejected, naming the field', (field, value) => {
    const e = leftOf({ [field]: value });
    expect(e.field).toBe(field);
    expect(e.message).toContain(field);
    expect(e.message).toContain('step svc_trainer');
  });

  it('an unknown option is rejected, listing every known option', () => {
    const e = leftOf({ expireAfter: '1h' });
    expect(e.field).toBe('expireAfter');
    for (const name of CACHE_SETTING_NAMES) expect(e.message).toContain(name);
  });

  it('accepts every valid combination of fields and keeps the defined values (property)', () => {
    fc.assert(
      fc.property(fullSettingsArb, (settings) => {
        const r = validateSettings(settings, 'step s');
        expect(E.isRight(r)).toBe(true);
        if (E.isRight(r)) {
          expect(r.right).toEqual(withoutUndefined(settings));
          for (const name of CACHE_SETTING_NAMES) expect(r.right[name]).toBe(settings[name]);
        }
      }),
    );
  });

  const INVALID: { readonly [K in CacheSettingName]: fc.Arbitrary<unknown> } = {
    enableCache: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
    version: fc.oneof(fc.constant(''), fc.integer(), fc.constant(null), fc.array(fc.string({ minLength: 1 }), { minLength: 1 })),
    dependsOn: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.integer())),
    files: fc.oneof(fc.string(), fc.constant(null), fc.constant(['']), fc.array(fc.integer(), { minLength: 1 })),
    ignoredInputs: fc.oneof(fc.string(), fc.constant(null), fc.constant(['']), fc.array(fc.integer(), { minLength: 1 })),
    expiresAfter: fc.oneof(fc.integer({ max: -1 }), fc.constant(NaN), fc.constant('5 minutes'), fc.constant(null), fc.boolean()),
    cacheKey: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.constant({})),
    refresh: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
    lockTimeout: fc.oneof(fc.integer({ max: 0 }), fc.constant(NaN), fc.constant('2 minutes'), fc.constant('0s'), fc.constant(null), fc.boolean()),
    timeout: fc.oneof(fc.integer({ max: 0 }), fc.double({ min: 2 ** 31, max: 2 ** 40, noNaN: true }), fc.constant(Infinity), fc.constant('25d'), fc.constant('an hour'), fc.constant(null), fc.constant({})),
    retries: fc.oneof(fc.integer({ max: -1 }), fc.integer({ min: 101 }), fc.double({ min: 0.1, max: 0.9, noNaN: true }), fc.constant(NaN), fc.constant('2'), fc.constant(null), fc.boolean()),
  };

  it('rejects an invalid value of any field, naming that field, whatever the other fields are (property)', () => {
    const invalidField = fc.constantFrom(...CACHE_SETTING_NAMES).chain((name) => INVALID[name].map((value) => [name, value] as const));
    fc.assert(
      fc.property(fullSettingsArb, invalidField, (settings, [name, value]) => {
        const r = validateSettings({ ...settings, [name]: value }, 'step s');
        expect(E.isLeft(r) && r.left.field).toBe(name);
      }),
    );
  });
});

describe('validatePipelineSettings', () => {
  it('steps: { svc: { refresh: "yes" } } names steps.svc.refresh', () => {
    const r = validatePipelineSettings({ steps: { svc: { refresh: 'yes' } } }, 'pipeline training_pipeline');
    expect(E.isLeft(r)).toBe(true);
    if (E.isLeft(r)) {
      expect(r.left.field).toBe('steps.svc.refresh');
      expect(r.left.message).toContain('refresh');
      expect(r.left.message).toContain('true or false');
    }
  });

  it('names the step and field of any invalid per-step setting (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom('svc', 'loader', 'a.b'), fc.constantFrom(...CACHE_SETTING_NAMES), (stepName, field) => {
        const bad: Record<CacheSettingName, unknown> = { enableCache: 'no', version: '', dependsOn: 1, files: 'a.csv', ignoredInputs: 'x', expiresAfter: -1, cacheKey: 'x', refresh: 'yes', lockTimeout: -1, timeout: 'soon', retries: 1.5 };
        const r = validatePipelineSettings({ steps: { [stepName]: { [field]: bad[field] } } }, 'pipeline p');
        expect(E.isLeft(r) && r.left.field).toBe(`steps.${stepName}.${field}`);
      }),
    );
  });

  it('rejects steps that is not an object, and an unknown option of a step', () => {
    const notObject = validatePipelineSettings({ steps: 'svc' }, 'pipeline p');
    expect(E.isLeft(notObject) && notObject.left.field).toBe('steps');
    const unknown = validatePipelineSettings({ steps: { svc: { refesh: true } } }, 'pipeline p');
    expect(E.isLeft(unknown) && unknown.left.field).toBe('steps.svc.refesh');
  });

  it('accepts valid pipeline settings with per-step settings (property)', () => {
    fc.assert(
      fc.property(fullSettingsArb, fc.dictionary(fc.constantFrom('a', 'b', 'svc'), fullSettingsArb, { maxKeys: 3, noNullPrototype: true }), (top, steps) => {
        const r = validatePipelineSettings({ ...top, steps }, 'pipeline p');
        expect(E.isRight(r)).toBe(true);
        if (E.isRight(r)) {
          expect(r.right).toEqual({ ...withoutUndefined(top), steps: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, withoutUndefined(v)])) });
        }
      }),
    );
  });
});

describe('mergePipelineSettings', () => {
  const pipelineSettingsArb: fc.Arbitrary<PipelineSettings> = fc
    .tuple(fullSettingsArb, fc.option(fc.dictionary(fc.constantFrom('a', 'b', 'svc'), fullSettingsArb, { maxKeys: 3, noNullPrototype: true }), { nil: undefined }))
    .map(([top, steps]) => (steps === undefined ? top : { ...top, steps }));

  it('merges the per-step settings of one step field by field', () => {
    expect(mergePipelineSettings({ steps: { a: { refresh: true } } }, { steps: { a: { version: '2' } } })).toEqual({ steps: { a: { refresh: true, version: '2' } } });
    expect(mergePipelineSettings({ enableCache: false, steps: { a: { refresh: true, version: '1' } } }, { steps: { a: { version: '2' }, b: { enableCache: false } } })).toEqual({
      enableCache: false,
      steps: { a: { refresh: true, version: '2' }, b: { enableCache: false } },
    });
  });

  it('top-level fields merge like mergeSettings and every step merges like mergeSettings of its two sides (property)', () => {
    fc.assert(
      fc.property(pipelineSettingsArb, pipelineSettingsArb, (earlier, later) => {
        const m = mergePipelineSettings(earlier, later);
        const top = mergeSettings(earlier, later);
        for (const name of CACHE_SETTING_NAMES) expect(m[name]).toBe(top[name]);
        const names = [...new Set([...Object.keys(earlier.steps ?? {}), ...Object.keys(later.steps ?? {})])].sort();
        expect(Object.keys(m.steps ?? {}).sort()).toEqual(names);
        for (const s of names) {
          const expected = mergeSettings(earlier.steps?.[s] ?? {}, later.steps?.[s] ?? {});
          for (const name of CACHE_SETTING_NAMES) expect(m.steps?.[s]?.[name]).toBe(expected[name]);
        }
      }),
    );
  });

  it('is associative (property)', () => {
    fc.assert(
      fc.property(pipelineSettingsArb, pipelineSettingsArb, pipelineSettingsArb, (a, b, c) => {
        expect(mergePipelineSettings(mergePipelineSettings(a, b), c)).toEqual(mergePipelineSettings(a, mergePipelineSettings(b, c)));
      }),
    );
  });
});

describe('settingsLayers: the order of precedence', () => {
  const none: PipelineSettings = {};
  const sources = (overrides: Partial<StepSettingsSources>): StepSettingsSources => ({ pipelineDefaults: none, stepSettings: {}, runConfig: none, runtime: none, stepName: 'svc', ...overrides });

  it('orders pipeline defaults < step settings < run config < runtime options < runtime options for the step', () => {
    const layers = settingsLayers(sources({ pipelineDefaults: { version: 'p' }, stepSettings: { version: 's' }, runConfig: { version: 'c' }, runtime: { version: 'r' } }));
    expect(layers.map((l) => l.layer)).toEqual(SETTINGS_LAYERS);
    expect(resolveSettings(layers).settings.version).toBe('r');
    expect(resolveSettings(layers.slice(0, 3)).sources.version).toBe('runConfig');
  });

  /** The seven places a value can be given for one step, lowest first, with the layer each belongs to. */
  const SLOTS: readonly (readonly [string, SettingsLayerName])[] = [
    ['pipelineDefaults', 'pipeline'],
    ['pipelineDefaults.steps', 'pipeline'],
    ['stepSettings', 'step'],
    ['runConfig', 'runConfig'],
    ['runConfig.steps', 'runConfig'],
    ['runtime', 'runtime'],
    ['runtime.steps', 'runtimeStep'],
  ];
  const slotsArb = fc.tuple(...SLOTS.map(() => fullSettingsArb));
  const build = (slots: readonly CacheSettings[], name = 'svc', other: CacheSettings = {}): StepSettingsSources => {
    const at = (i: number) => slots[i] as CacheSettings;
    const withSteps = (top: CacheSettings, mine: CacheSettings): PipelineSettings => ({ ...top, steps: { [name]: mine, other_step: other } });
    return { pipelineDefaults: withSteps(at(0), at(1)), stepSettings: at(2), runConfig: withSteps(at(3), at(4)), runtime: withSteps(at(5), at(6)), stepName: name };
  };

  it('for every setting, the highest place that sets it wins, and undefined falls through (property)', () => {
    fc.assert(
      fc.property(slotsArb, (slots) => {
        const r = resolveSettings(settingsLayers(build(slots)));
        for (const name of CACHE_SETTING_NAMES) {
          const last = slots.map((settings, i) => [settings[name], i] as const).filter(([v]) => v !== undefined).at(-1);
          if (last === undefined) {
            expect(r.sources[name]).toBe('default');
            expect(r.settings[name]).toBe(DEFAULTS[name]);
          } else {
            expect(r.sources[name]).toBe((SLOTS[last[1]] as readonly [string, SettingsLayerName])[1]);
            expect(r.settings[name]).toBe(resolvedValue(name, last[0]));
          }
        }
      }),
    );
  });

  it('settings given for another step never matter (property)', () => {
    fc.assert(
      fc.property(slotsArb, fullSettingsArb, (slots, other) => {
        expect(resolveSettings(settingsLayers(build(slots, 'svc', other)))).toEqual(resolveSettings(settingsLayers(build(slots, 'svc', {}))));
      }),
    );
  });

  it('a step called like a property of Object.prototype gets no inherited settings', () => {
    const layers = settingsLayers(sources({ stepName: 'toString', runtime: { steps: {} } }));
    expect(resolveSettings(layers).sources).toEqual(Object.fromEntries(CACHE_SETTING_NAMES.map((n) => [n, 'default'])));
  });

  it('a changed key always misses: whatever the places set, decideCache never uses the cache on a Miss (property)', () => {
    fc.assert(
      fc.property(slotsArb, (slots) => {
        const resolved = resolveSettings(settingsLayers(build(slots)));
        const d = decideCache(resolved, { _tag: 'Miss' });
        expect(d._tag).toBe('Execute');
        if (resolved.settings.enableCache && !resolved.settings.refresh) expect(d).toEqual({ _tag: 'Execute', reason: 'no-entry', decidedBy: 'key' });
      }),
    );
  });

  it('resolving the layers equals resolving their merge, grouped either way (property)', () => {
    fc.assert(
      fc.property(slotsArb, fc.integer({ min: 0, max: SETTINGS_LAYERS.length }), (slots, cut) => {
        const layers = settingsLayers(build(slots));
        const merged = (ls: readonly SettingsLayer[]) => ls.reduce((acc, l) => mergeSettings(acc, l.settings), {} as CacheSettings);
        const left = merged(layers.slice(0, cut));
        const right = merged(layers.slice(cut));
        expect(resolveSettings([{ layer: 'pipeline', settings: mergeSettings(left, right) }]).settings).toEqual(resolveSettings(layers).settings);
      }),
    );
  });
});

describe('validation errors are data', () => {
  it('give the field path and the reason apart from the message', () => {
    expect(validatePipelineSettings({ steps: { svc: { expiresAfter: -1 } } }, 'pipeline p')).toEqual(
      E.left({
        field: 'steps.svc.expiresAfter',
        reason: "got -1, expected a number of milliseconds (0 or more) or a duration like '90s', '30m', '12h', '7d'",
        message: "Invalid option expiresAfter of step svc in pipeline p: got -1, expected a number of milliseconds (0 or more) or a duration like '90s', '30m', '12h', '7d'.",
      }),
    );
  });

  it('the message of an invalid value ends with its reason, for every field (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...CACHE_SETTING_NAMES), (name) => {
        const invalid = validateSettings({ [name]: Symbol('nope') }, 'step s');
        expect(E.isLeft(invalid) && invalid.left.message.endsWith(`: ${invalid.left.reason}.`)).toBe(true);
        expect(E.isLeft(invalid) && invalid.left.field).toBe(name);
      }),
    );
  });
});
