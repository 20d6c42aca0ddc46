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

/**
 * The value of an own property, `undefined` when the name is not an own property (so
 * `'toString'` or `'__proto__'` never reach the prototype).
 *
 * @internal
 * @example
 * ownValue({ a: 1 }, 'a'); // 1
 * ownValue({ a: 1 }, 'toString'); // undefined
 */
export const ownValue = <A>(record: Readonly<Record<string, A>>, key: string): A | undefined => (Object.hasOwn(record, key) ? record[key] : undefined);
