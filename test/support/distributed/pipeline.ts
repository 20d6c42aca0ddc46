/**
 * The pipeline of the distributed tests (test/distributed.test.ts): twelve steps in a diamond, a
 * source, ten branches that read it, and a merge that reads them all. Every execution is appended
 * to the file `$STEPCACHE_TEST_EXECUTIONS` (`<step> <pid>`), so the test counts executions per
 * key. `$STEPCACHE_TEST_SLOW_STEP=<step>:<ms>` makes one step take that long (a worker can then be
 * killed in the middle of it); `$STEPCACHE_TEST_EDITED=1` loads another version of the merge's code;
 * `$STEPCACHE_TEST_FLAKY=<step>:<file>` makes a step fail once.
 */
import * as fs from 'node:fs';
import { pipeline, step, type Handle } from '../../../src';

const note = (name: string): void => {
  const file = process.env['STEPCACHE_TEST_EXECUTIONS'];
  if (file !== undefined) fs.appendFileSync(file, `${name} ${String(process.pid)}\n`);
};

const slowness = async (name: string): Promise<void> => {
  const [slow, ms] = (process.env['STEPCACHE_TEST_SLOW_STEP'] ?? '').split(':');
  if (slow === name) await new Promise((resolve) => setTimeout(resolve, Number(ms)));
  // `$STEPCACHE_TEST_FLAKY=<step>:<marker file>`: the step fails the first time (while the marker does not exist)
  const [flaky, marker] = (process.env['STEPCACHE_TEST_FLAKY'] ?? '').split(':');
  if (flaky === name && marker !== undefined && !fs.existsSync(marker)) {
    fs.writeFileSync(marker, '');
    throw new Error(`${name} failed once`);
  }
};

export const source = step(async function source({ size }: { size: number }) {
  note('source');
  await slowness('source');
  return Array.from({ length: size }, (_, i) => i);
});

export const branch = step(async function branch({ rows, factor }: { rows: number[]; factor: number }) {
  note(`branch_${String(factor)}`);
  await slowness(`branch_${String(factor)}`);
  return rows.reduce((sum, x) => sum + x * factor, 0);
});

const mergeOriginal = step(async function merge(sums: Record<string, number>) {
  note('merge');
  await slowness('merge');
  return Object.values(sums).reduce((a, b) => a + b, 0);
});

const mergeEdited = step(async function merge(sums: Record<string, number>) {
  note('merge');
  await slowness('merge');
  return Object.values(sums).reduce((a, b) => a + b, 1);
});

export const merge = process.env['STEPCACHE_TEST_EDITED'] === '1' ? mergeEdited : mergeOriginal;

export const BRANCHES = 10;

export const diamond = pipeline('diamond', (p, { size = 100 }: { size?: number }) => {
  const rows = p.call(source, { size });
  const sums: Record<string, Handle<number>> = {};
  for (let factor = 1; factor <= BRANCHES; factor++) sums[`b${String(factor)}`] = p.call(branch.named(`branch_${String(factor)}`), { rows, factor });
  return { total: p.call(merge, sums) };
});
