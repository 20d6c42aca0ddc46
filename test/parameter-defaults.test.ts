/**
 * Reading a step function's parameter names and defaults from its text, and the parameters a key
 * is computed from.
 */
import fc from 'fast-check';
import { effectiveParameters, parameterDefaultsOf } from '../src/cache/parameter-defaults';

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
