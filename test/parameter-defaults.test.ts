/**
 * Reading a step function's parameter names and defaults from its text, and the parameters a key
 * is computed from.
 */
import fc from 'fast-check';
import { effectiveParameters, parameterDefaultsOf, readWithCompiler, readWithoutCompiler } from '../src/cache/parameter-defaults';

const SEED = 7;

describe('parameterDefaultsOf', () => {
  it('reads constant defaults of a destructuring pattern, and every name it binds', () => {
    const d = parameterDefaultsOf(function train({ X, gamma = 0.001, kernel = 'rbf', sizes = [1, -2], opts = { deep: true, none: null } }: { X: number; gamma?: number; kernel?: string; sizes?: number[]; opts?: object }) {
      return [X, gamma, kernel, sizes, opts];
    });
    expect(d.names).toEqual(new Set(['X', 'gamma', 'kernel', 'sizes', 'opts']));
    expect(Object.fromEntries(d.known)).toEqual({ gamma: 0.001, kernel: 'rbf', sizes: [1, -2], opts: { deep: true, none: null } });
    expect(d.unknown.size).toBe(0);
  });

  it('a default that is not a constant is unknown, with its text', () => {
    const d = parameterDefaultsOf(({ x, seed = SEED, at = Date.now() }: { x: number; seed?: number; at?: number }) => x + seed + at);
    expect(Object.fromEntries(d.unknown)).toEqual({ seed: 'SEED', at: 'Date.now()' });
    expect(d.known.size).toBe(0);
  });

  it('renamed bindings are read by property name; a method is read too', () => {
    const holder = {
      fit({ rate: r = 0.5, 'with-dash': w = 'x' }: { rate?: number; 'with-dash'?: string }) {
        return [r, w];
      },
    };
    const d = parameterDefaultsOf(holder.fit);
    expect(Object.fromEntries(d.known)).toEqual({ rate: 0.5, 'with-dash': 'x' });
  });

  it('a rest element or a plain identifier leaves the names unknown', () => {
    expect(parameterDefaultsOf(({ a = 1, ...rest }: { a?: number; b: number }) => [a, rest]).names).toBeUndefined();
    expect(parameterDefaultsOf((input: { a: number }) => input.a).names).toBeUndefined();
    expect(parameterDefaultsOf(() => 1).names).toBeUndefined();
  });
});

describe('reading without the compiler (the fast path of simple parameters)', () => {
  const identifier = fc.stringMatching(/^[A-Za-z_$][\w$]{0,6}$/);
  const constant = fc.oneof(
    fc.constantFrom('true', 'false', 'null', 'undefined', '0', '-0', '1e3', '-2.5', '0.001', '12E-2'),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => String(x)).filter((x) => /^-?\d+(\.\d+)?(e[+-]?\d+)?$/.test(x)),
  );
  /** An element of an object pattern: mostly simple, sometimes what only the compiler reads. */
  const element = fc.oneof(
    { weight: 6, arbitrary: fc.tuple(identifier, fc.option(identifier, { nil: undefined }), fc.option(constant, { nil: undefined })).map(([key, rename, value]) => `${key}${rename === undefined ? '' : `: ${rename}`}${value === undefined ? '' : ` = ${value}`}`) },
    { weight: 1, arbitrary: fc.constantFrom("s = 'x'", 'seed = SEED', '...rest', 'a = [1]', "'k-1': k", 'o = { a: 1 }', 'n = 0x10', 'c = /* c */ 1') },
  );
  const parameter = fc.oneof(
    fc.array(element, { maxLength: 5 }).chain((elements) => fc.constantFrom(`{ ${elements.join(', ')} }`, `{${elements.join(',\n  ')},}`, `{ ${elements.join(', ')} } = {}`)),
    identifier,
    fc.constant(''),
  );
  const functionText = fc
    .tuple(parameter, fc.constantFrom('function', 'async function', 'function named', 'function* gen', 'arrow', 'async arrow', 'method'))
    .map(([p, form]) => {
      switch (form) {
        case 'arrow':
          return `(${p}) => 1`;
        case 'async arrow':
          return `async (${p}) => 1`;
        case 'method':
          return `fit(${p}, more) { return 1; }`;
        default:
          return `${form}(${p}) { return 1; }`;
      }
    });

  it('agrees with the compiler wherever it reads a parameter (law)', () => {
    fc.assert(
      fc.property(functionText, (text) => {
        const fast = readWithoutCompiler(text);
        if (fast === undefined) return;
        const full = readWithCompiler(text);
        expect(fast.names).toEqual(full.names);
        expect([...fast.known]).toEqual([...full.known]);
        expect(fast.unknown).toEqual(full.unknown);
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('reads the common forms itself, and leaves strings, non-constant defaults and rest elements to the compiler', () => {
    expect(readWithoutCompiler('function train({ X, gamma = 0.001, on = true }) { return X; }')).toEqual({ names: new Set(['X', 'gamma', 'on']), known: new Map<string, unknown>([['gamma', 0.001], ['on', true]]), unknown: new Map() });
    expect(readWithoutCompiler('({ x: renamed, n = -1 }) => renamed')?.known).toEqual(new Map([['n', -1]]));
    expect(readWithoutCompiler('async function load(input) { return input; }')?.names).toBeUndefined();
    expect(readWithoutCompiler('() => 1')?.names).toBeUndefined();
    for (const text of ["function f({ k = 'rbf' }) {}", 'function f({ seed = SEED }) {}', 'function f({ a, ...rest }) {}', 'x => x']) expect(readWithoutCompiler(text)).toBeUndefined();
  });
});

describe('effectiveParameters', () => {
  const defaults = parameterDefaultsOf(function f({ X, gamma = 0.001 }: { X: number; gamma?: number }) {
    return X * gamma;
  });

  it('passing a default explicitly, leaving it out and passing undefined are the same', () => {
    const left = effectiveParameters({ X: 1 }, defaults, new Set());
    expect(left).toEqual({ X: 1, gamma: 0.001 });
    expect(effectiveParameters({ X: 1, gamma: 0.001 }, defaults, new Set())).toEqual(left);
    expect(effectiveParameters({ X: 1, gamma: undefined }, defaults, new Set())).toEqual(left);
  });

  it('a passed value wins over the default (law, for any value)', () => {
    fc.assert(
      fc.property(fc.jsonValue().filter((v) => v !== null), (value) => {
        expect(effectiveParameters({ gamma: value }, defaults, new Set())['gamma']).toEqual(value);
      }),
    );
  });

  it('skipped names (upstream inputs, ignored inputs) are neither passed on nor defaulted', () => {
    expect(effectiveParameters({ X: 1, gamma: 2 }, defaults, new Set(['gamma']))).toEqual({ X: 1 });
  });
});
