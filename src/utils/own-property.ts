/**
 * Own properties for names that come from users: step names, parameter names and config keys may
 * be `__proto__`, `constructor` or `toString`, and plain assignment or lookup would reach the prototype.
 *
 * @packageDocumentation
 */

/**
 * Sets an own, enumerable property, even for `__proto__` (whose assignment would replace the prototype).
 *
 * @internal
 * @example
 * const o = {};
 * defineOwn(o, '__proto__', 1);
 * Object.keys(o); // ['__proto__']
 */
export const defineOwn = (target: object, key: string, value: unknown): void => {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
};
