/**
 * Call sites from V8 stack traces. Under tsx, ts-node and jest the stack is already
 * source-mapped, so the site names the `.ts` file and its line and column.
 *
 * @packageDocumentation
 */
import { fileURLToPath } from 'node:url';
import type { CallSite } from './model';

// utils

const FRAME = /^\s*at\s+(.*)$/;
const LOCATION = /^(.*):(\d+):(\d+)$/;

/** The location part of one frame: inside the last balanced parentheses, or the whole frame. */
const locationOf = (frame: string): string => {
  if (!frame.endsWith(')')) return frame;
  let depth = 0;
  for (let i = frame.length - 1; i >= 0; i--) {
    const c = frame[i];
    if (c === ')') depth++;
    else if (c === '(' && --depth === 0) return frame.slice(i + 1, -1);
  }
  return frame;
};

/** Parses one frame's location; `eval` frames report the position inside the evaluated code. */
const parseLocation = (location: string): CallSite | undefined => {
  const evaluated = location.startsWith('eval at ') ? location.slice(location.lastIndexOf(', ') + 2) : location;
  const match = LOCATION.exec(evaluated);
  if (match === null) return undefined;
  const [, where = '', line = '', column = ''] = match;
  let file = where;
  if (file.startsWith('file://')) {
    try {
      file = fileURLToPath(file);
    } catch {
      return undefined;
    }
  }
  return { file, line: Number(line), column: Number(column) };
};

// call sites

/**
 * The call site `depth` frames up the stack of `error`: depth 0 is the function that made the
 * error, 1 its caller, and so on. Returns `undefined` when the stack has no such frame, or the
 * frame has no file position (native code, `Promise.all`).
 *
 * Code run by `eval` or `new Function` gets a site whose file is `<anonymous>`, which exists on
 * no disk, so its fingerprint is shallow.
 *
 * @example
 * function step<F>(fn: F) {
 *   const site = callSiteOf(new Error(), 1); // where step() was called
 *   return { fn, site };
 * }
 */
export function callSiteOf(error: Error, depth: number): CallSite | undefined {
  const stack: unknown = error.stack;
  if (typeof stack !== 'string' || !Number.isInteger(depth) || depth < 0) return undefined;
  let index = 0;
  for (const line of stack.split('\n')) {
    const frame = FRAME.exec(line);
    if (frame === null) continue;
    if (index++ === depth) return parseLocation(locationOf((frame[1] ?? '').trim()));
  }
  return undefined;
}
