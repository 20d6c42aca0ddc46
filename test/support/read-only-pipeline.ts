/**
 * The pipeline of the read-only store tests: `double` feeds `increment` and `label` (two
 * consumers of one output, so the second loads it back from where it was handed on).
 *
 * @packageDocumentation
 */
import { pipeline, step } from '../../src';

const double = step(function ro_double({ x }: { x: number }) {
  return x * 2;
});
const increment = step(function ro_increment({ doubled }: { doubled: number }) {
  return doubled + 1;
});
const label = step(function ro_label({ doubled, plus }: { doubled: number; plus: number }) {
  return `${doubled}/${plus}`;
});

/** The pipeline: `{ doubled: 2x, result: '2x/2x+1' }`. */
export const readOnlyPipeline = pipeline('read_only', (p, { x }: { x: number }) => {
  const doubled = p.call(double, { x });
  const plus = p.call(increment, { doubled });
  return { doubled, result: p.call(label, { doubled, plus }) };
});

/** What a run gives for `x`, by hand. */
export const readOnlyExpected = (x: number) => ({ doubled: x * 2, result: `${x * 2}/${x * 2 + 1}` });
