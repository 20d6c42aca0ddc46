/**
 * The pipelines the benchmark measures, shared by the benchmark itself and by the child process
 * that times a cached run in a fresh process: both must build exactly the same steps (same
 * names, same code, same parameters) so that the child finds the parent's cache entries.
 *
 * @packageDocumentation
 */
import { pipeline, step, type Handle, type Pipeline, type PipelineOutputs } from '../src/index';

/** How many steps the many-steps pipelines have. */
export const STEP_COUNT = 1000;

// the step functions, also called directly as the plain-call baseline

/**
 * The first step of the chain: returns its parameter.
 *
 * @example
 * seed({ k: 3 }); // 3
 */
export function seed({ k }: { k: number }): number {
  return k;
}

/**
 * Every later step of the chain: the previous step's output plus a parameter.
 *
 * @example
 * add({ prev: 3, k: 4 }); // 7
 */
export function add({ prev, k }: { prev: number; k: number }): number {
  return prev + k;
}

/**
 * The step of the independent pipeline: twice its parameter.
 *
 * @example
 * twice({ k: 4 }); // 8
 */
export function twice({ k }: { k: number }): number {
  return 2 * k;
}

// the many-steps pipelines

const seedStep = step(seed).named('s0');
const addSteps = Array.from({ length: STEP_COUNT - 1 }, (_, i) => step(add).named(`s${i + 1}`));
const twiceSteps = Array.from({ length: STEP_COUNT }, (_, i) => step(twice).named(`s${i}`));

/**
 * A chain of {@link STEP_COUNT} distinct steps: step `s<i>` takes the output of `s<i-1>` plus the
 * parameter `k = i`. Its output `last` is the sum 0 + 1 + ... + (STEP_COUNT - 1).
 */
export const chainPipeline = pipeline('bench_chain', (p) => {
  let prev: Handle<number> = p.call(seedStep, { k: 0 });
  addSteps.forEach((s, i) => {
    prev = p.call(s, { prev, k: i + 1 });
  });
  return { last: prev };
});

/** {@link STEP_COUNT} distinct steps without inputs: step `s<i>` returns `2 * i`. */
export const independentPipeline = pipeline('bench_independent', (p) => {
  twiceSteps.forEach((s, i) => {
    p.call(s, { k: i });
  });
});

/** The names of the many-steps pipelines, as the child process takes them on its command line. */
export type ShapeName = 'chain' | 'independent';

/**
 * A many-steps pipeline and the plain computation it stands for.
 */
export interface Shape {
  /** What the measure is called in the report. */
  readonly label: string;
  /** The pipeline. */
  readonly pipeline: Pipeline<{}, PipelineOutputs | void>;
  /**
   * The same work as the pipeline's step functions, as plain function calls with the same
   * argument objects: the baseline of a cached step. Returns a value so that nothing is optimized away.
   */
  readonly plain: () => number;
}

/** The plain-call equivalent of {@link chainPipeline}. */
export const plainChain = (): number => {
  let prev = seed({ k: 0 });
  for (let i = 1; i < STEP_COUNT; i++) prev = add({ prev, k: i });
  return prev;
};

/** The plain-call equivalent of {@link independentPipeline}. */
export const plainIndependent = (): number => {
  let sum = 0;
  for (let i = 0; i < STEP_COUNT; i++) sum += twice({ k: i });
  return sum;
};

/** Both many-steps pipelines, by name. */
export const SHAPES: Readonly<Record<ShapeName, Shape>> = {
  chain: { label: `${STEP_COUNT}-step chain`, pipeline: chainPipeline, plain: plainChain },
  independent: { label: `${STEP_COUNT} independent steps`, pipeline: independentPipeline, plain: plainIndependent },
};

/**
 * Whether a string names a shape.
 *
 * @example
 * isShapeName('chain'); // true
 */
export const isShapeName = (x: string | undefined): x is ShapeName => x === 'chain' || x === 'independent';
