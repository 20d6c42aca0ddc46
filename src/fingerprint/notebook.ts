/**
 * Fingerprints of steps defined in notebook cells (the tslab kernel). A cell is compiled and run
 * without a source file, so a step defined there cannot be found in one; but tslab keeps every
 * top-level name of the cells run so far in one object (`__tslab__.exports`), and compiles a use
 * of a name from an earlier cell to `exports.name`. The helpers a step uses from the cells
 * (functions and classes, by their text; constants, by their value) are found there, transitively.
 *
 * What stays shallow: the code of the modules the cells import (a package's function is
 * fingerprinted by its own text only), and cell values that cannot be encoded (named as shallow
 * spots).
 *
 * @packageDocumentation
 * @internal
 */
import * as E from 'fp-ts/Either';
import type * as TS from 'typescript';
import { encodeCanonical } from '../encoding/canonical';
import type { FingerprintPart } from './model';
import { nodeText } from './modules';
import { freeNames, isNativeCode, typescript } from './syntax';

// utils

/** The name tslab's compiled cells read earlier cells' names from. */
const CELLS_OBJECT = 'exports';

/**
 * The values of the names defined by the notebook cells run so far, when this process is a tslab
 * kernel; `undefined` otherwise.
 *
 * @internal
 * @example
 * notebookCells()?.['normalize']; // the function a cell defined
 */
export const notebookCells = (): Readonly<Record<string, unknown>> | undefined => {
  const tslab = (globalThis as { readonly __tslab__?: { readonly exports?: unknown } }).__tslab__;
  const cells = tslab?.exports;
  return typeof cells === 'object' && cells !== null ? (cells as Record<string, unknown>) : undefined;
};

/** The function or class node a function's text parses to. */
const parseFunction = (text: string): TS.Node | undefined => {
  const ts = typescript();
  const sf = ts.createSourceFile('cell.js', `(${text}\n)`, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const [statement] = sf.statements;
  if (statement === undefined || !ts.isExpressionStatement(statement)) return undefined;
  let node: TS.Node = statement.expression;
  while (ts.isParenthesizedExpression(node)) node = node.expression;
  return ts.isFunctionExpression(node) || ts.isArrowFunction(node) || ts.isClassExpression(node) ? node : undefined;
};

/** Whether a value is what a module exports (a package loaded in a cell): it is not a cell's value. */
const isModuleExports = (value: unknown): boolean => {
  if (typeof value !== 'object' || value === null) return false;
  const cache = (typeof require === 'function' ? require.cache : undefined) ?? {};
  return Object.values(cache).some((m) => m?.exports === value);
};

/** The names from the cells that code uses: `exports.x` (an earlier cell's), and plain names a cell defines (its own). */
const cellNamesUsed = (node: TS.Node, cells: Readonly<Record<string, unknown>>): string[] => {
  const names: string[] = [];
  for (const [name, use] of freeNames(node).names) {
    if (name === CELLS_OBJECT) {
      if (use !== null) names.push(...[...use].filter((member) => Object.hasOwn(cells, member)));
    } else if (Object.hasOwn(cells, name)) names.push(name);
  }
  return names;
};

// parts

/**
 * The parts of a notebook step beyond its own text: the functions, classes and constants it uses
 * from the notebook's cells, transitively (named as in the cells), and the shallow spots where a
 * cell value cannot be fingerprinted.
 *
 * @internal
 * @example
 * notebookParts(fn, cells, hash); // { parts: [{ name: 'normalize', kind: 'function', hash: '…' }], shallowSpots: [] }
 */
export const notebookParts = (
  fn: Function,
  cells: Readonly<Record<string, unknown>>,
  hash: (bytes: Uint8Array) => string,
): { readonly parts: readonly FingerprintPart[]; readonly shallowSpots: readonly string[] } => {
  const ts = typescript();
  const encoder = new TextEncoder();
  const parts: FingerprintPart[] = [];
  const spots: string[] = [];
  const seen = new Set<string>();
  const root = parseFunction(Function.prototype.toString.call(fn));
  const queue = root === undefined ? [] : cellNamesUsed(root, cells);
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    if (seen.has(name)) continue;
    seen.add(name);
    const value = cells[name];
    if (typeof value === 'function') {
      const text = Function.prototype.toString.call(value);
      const node = isNativeCode(text) ? undefined : parseFunction(text);
      if (node === undefined) {
        spots.push(`${name}, from a notebook cell: a bound or built-in function, whose code cannot be read`);
        continue;
      }
      const kind = ts.isClassExpression(node) ? 'class' : 'function';
      parts.push({ name, kind, hash: hash(encoder.encode(`notebook ${kind}\n${nodeText(node)}`)) });
      queue.push(...cellNamesUsed(node, cells));
      continue;
    }
    if (isModuleExports(value)) continue;
    const encoded = encodeCanonical(value);
    if (E.isRight(encoded)) parts.push({ name, kind: 'variable', hash: hash(new Uint8Array([...encoder.encode('notebook value\n'), ...encoded.right])) });
    else spots.push(`${name}, from a notebook cell: a value that cannot be encoded (${encoded.left.reason}), so a change to it is not seen`);
  }
  return { parts, shallowSpots: spots.sort() };
};
