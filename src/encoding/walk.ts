/**
 * The one walk over plain values, shared by the canonical encoding of cache keys, the check
 * that an output can be stored as JSON (and its JSON text), and the previews in messages.
 *
 * The walk keeps its own stack, so a value nested 100,000 levels deep is walked like a flat
 * one, never with `RangeError: Maximum call stack size exceeded`. Whatever could make it throw
 * becomes a typed refusal naming the path at fault: a getter that throws, a Proxy (whose traps
 * can do anything, and which can answer differently each time it is read), a reference back to
 * an enclosing object (a cycle).
 *
 * A visitor says, for every value reached, what it writes and whether to walk into it (an
 * array, a plain object, a Map, a Set); the walk calls it back before and after each child
 * and when it leaves a container.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import { types } from 'node:util';
import { toError } from '../errors';

// model

/**
 * Why a value could not be walked, encoded or stored: the path inside the value and what was
 * found there.
 *
 * @example
 * const e: Unencodable = { _tag: 'Unencodable', path: '.model.predict', reason: 'a function' };
 */
export interface Unencodable {
  readonly _tag: 'Unencodable';
  /** Where in the value, like `.weights[3]` (empty for the value itself). */
  readonly path: string;
  /** What was found there, phrased to complete "... is ". */
  readonly reason: string;
}

/**
 * One step into a value: a property, an index, or a Map/Set entry's key or value.
 *
 * @example
 * const s: Segment = { entry: 0, part: 'key' };
 */
export type Segment = string | number | { readonly entry: number; readonly part: 'key' | 'value' };

/**
 * A container the walk goes into, with its children in the order they are walked.
 *
 * @example
 * const c: Container = { kind: 'object', value: { b: 1, a: 2 }, keys: ['a', 'b'] };
 */
export type Container =
  | { readonly kind: 'array'; readonly value: readonly unknown[] }
  | { readonly kind: 'object'; readonly value: object; readonly keys: readonly string[] }
  | { readonly kind: 'map'; readonly value: ReadonlyMap<unknown, unknown> }
  | { readonly kind: 'set'; readonly value: ReadonlySet<unknown> };

/**
 * What a visitor can ask of the walk: where it is, to refuse the value there, or to stop early
 * (a preview that has enough text).
 *
 * @example
 * const visit = (value: unknown, walk: Walk) => (typeof value === 'function' ? walk.refuse('a function') : undefined);
 */
export interface Walk {
  /** The path to the current value, like `.weights[3]`. */
  path(): string;
  /** Ends the walk with a refusal at the current path. */
  refuse(reason: string): never;
  /** Ends the walk without error. */
  stop(): never;
}

/**
 * What the walk calls back. `enter` sees every value reached (a hole of a sparse array as
 * {@link HOLE}) and returns the container to walk into, or `undefined` when the value needs no
 * more; the other hooks see containers being walked.
 *
 * @example
 * const countLeaves = (): Visitor => { let n = 0; return { enter: (v) => (Array.isArray(v) ? { kind: 'array', value: v } : void n++) }; };
 */
export interface Visitor {
  enter(value: unknown, walk: Walk): Container | undefined;
  /** Before child `index` of a container is entered (its segment is already on the path). */
  beforeChild?(container: Container, index: number, walk: Walk): void;
  /** After child `index` and everything below it were walked. */
  afterChild?(container: Container, index: number, walk: Walk): void;
  /** After every child of a container was walked. */
  leave?(container: Container, walk: Walk): void;
}

/**
 * What the walk enters for a hole in a sparse array (an index with no element at all).
 *
 * @example
 * const visit = (value: unknown) => (value === HOLE ? 'hole' : 'value');
 */
export const HOLE: unique symbol = Symbol('hole');

// paths

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

const renderSegment = (segment: Segment): string =>
  typeof segment === 'number'
    ? `[${segment}]`
    : typeof segment === 'object'
      ? `<${segment.part} ${segment.entry}>`
      : IDENTIFIER.test(segment)
        ? `.${segment}`
        : `[${JSON.stringify(segment)}]`;

/** Paths longer than this many segments show their ends and how many levels lie between. */
const PATH_ENDS = 12;

/**
 * A path as people read it (`.a[3]["odd key"]<key 0>`); a very deep one keeps its first and
 * last dozen steps and says how many levels lie between.
 *
 * @example
 * renderPath(['weights', 3]); // '.weights[3]'
 */
export const renderPath = (path: readonly Segment[]): string =>
  path.length <= 2 * PATH_ENDS + 1
    ? path.map(renderSegment).join('')
    : `${path.slice(0, PATH_ENDS).map(renderSegment).join('')}…(${path.length - 2 * PATH_ENDS} levels)…${path.slice(-PATH_ENDS).map(renderSegment).join('')}`;

// the walk

class Refusal {
  constructor(readonly error: Unencodable) {}
}

class Stop {}

/** The state of one walk: where it is, what encloses it, the containers being walked. */
class Walker implements Walk {
  readonly segments: Segment[] = [];
  readonly ancestors: Set<object>;
  readonly stack: Frame[] = [];

  constructor(enclosing: ReadonlySet<object> | undefined) {
    this.ancestors = enclosing === undefined ? new Set() : new Set(enclosing);
  }

  path(): string {
    return renderPath(this.segments);
  }

  refuse(reason: string): never {
    throw new Refusal({ _tag: 'Unencodable', path: this.path(), reason });
  }

  stop(): never {
    throw new Stop();
  }
}

interface Frame {
  readonly container: Container;
  /** Map and Set entries, read once when the container is entered. */
  readonly entries: readonly (readonly [unknown, unknown])[];
  readonly size: number;
  next: number;
  childOpen: boolean;
}

const NO_ENTRIES: readonly (readonly [unknown, unknown])[] = [];

const frameOf = (container: Container): Frame => {
  switch (container.kind) {
    case 'array':
      return { container, entries: NO_ENTRIES, size: container.value.length, next: 0, childOpen: false };
    case 'object':
      return { container, entries: NO_ENTRIES, size: container.keys.length, next: 0, childOpen: false };
    case 'map': {
      const entries = [...container.value.entries()];
      return { container, entries, size: 2 * entries.length, next: 0, childOpen: false };
    }
    case 'set': {
      const entries = [...container.value].map((k) => [k, undefined] as const);
      return { container, entries, size: entries.length, next: 0, childOpen: false };
    }
  }
};

const segmentOf = (frame: Frame, i: number): Segment => {
  const c = frame.container;
  switch (c.kind) {
    case 'array':
      return i;
    case 'object':
      return c.keys[i] as string;
    case 'map':
      return { entry: i >> 1, part: (i & 1) === 0 ? 'key' : 'value' };
    case 'set':
      return { entry: i, part: 'key' };
  }
};

const childOf = (frame: Frame, i: number): unknown => {
  const c = frame.container;
  switch (c.kind) {
    case 'array':
      return i in c.value ? c.value[i] : HOLE;
    case 'object':
      return (c.value as Record<string, unknown>)[c.keys[i] as string];
    case 'map':
      return (frame.entries[i >> 1] as readonly [unknown, unknown])[i & 1];
    case 'set':
      return (frame.entries[i] as readonly [unknown, unknown])[0];
  }
};

/**
 * Walks a value depth first with an explicit stack, calling the visitor back; `Left` with the
 * path and the reason when the visitor refuses a value, when a getter throws, at a Proxy and at
 * a cycle.
 *
 * @example
 * const leaves: unknown[] = [];
 * walkValue({ a: [1, 2] }, { enter: (v) => (Array.isArray(v) ? { kind: 'array', value: v } : typeof v === 'object' && v !== null ? { kind: 'object', value: v, keys: Object.keys(v) } : void leaves.push(v)) });
 * leaves; // [1, 2]
 */
export const walkValue = (value: unknown, visitor: Visitor, enclosing?: ReadonlySet<object>): E.Either<Unencodable, void> => {
  const walk = new Walker(enclosing);
  const { segments: path, ancestors, stack } = walk;
  let current = value;
  try {
    for (;;) {
      if ((typeof current === 'object' && current !== null) || typeof current === 'function') {
        if (types.isProxy(current)) walk.refuse('a Proxy, which can answer differently each time it is read; pass plain data');
        if (ancestors.has(current)) walk.refuse('a reference back to an enclosing object (a cycle)');
      }
      const container = visitor.enter(current, walk);
      if (container !== undefined) {
        ancestors.add(container.value);
        let frame: Frame;
        try {
          frame = frameOf(container);
        } catch (e) {
          return walk.refuse(`a ${container.kind} whose entries could not be read (${toError(e).message})`);
        }
        stack.push(frame);
      }
      for (;;) {
        const top = stack[stack.length - 1];
        if (top === undefined) return E.right(undefined);
        if (top.childOpen) {
          visitor.afterChild?.(top.container, top.next - 1, walk);
          path.pop();
          top.childOpen = false;
        }
        if (top.next < top.size) {
          const i = top.next++;
          path.push(segmentOf(top, i));
          top.childOpen = true;
          visitor.beforeChild?.(top.container, i, walk);
          try {
            current = childOf(top, i);
          } catch (e) {
            return walk.refuse(`a property whose getter threw (${toError(e).message}); pass plain data`);
          }
          break;
        }
        stack.pop();
        ancestors.delete(top.container.value);
        visitor.leave?.(top.container, walk);
      }
    }
  } catch (e) {
    if (e instanceof Refusal) return E.left(e.error);
    if (e instanceof Stop) return E.right(undefined);
    throw e;
  }
};

// helpers for visitors

/**
 * True for objects whose prototype is `Object.prototype` or `null`.
 *
 * @example
 * isPlainObject({ a: 1 }); // true
 * isPlainObject(new Date()); // false
 */
export const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

/**
 * How a value of a class is named in refusals.
 *
 * @example
 * describeInstance(new (class Model {})()); // 'an instance of class Model'
 */
export const describeInstance = (value: object): string => {
  const name: unknown = Object.getPrototypeOf(value)?.constructor?.name;
  return typeof name === 'string' && name !== '' ? `an instance of class ${name}` : 'an object with a custom prototype';
};
