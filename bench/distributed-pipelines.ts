/**
 * The pipelines of the distributed benchmark, loaded by the benchmark (the client) and by its
 * workers (`stepcache worker --module bench/distributed-pipelines.ts`): a chain of tiny steps, to
 * time dispatching, and a grid of CPU-bound steps, 4 layers of 3, to time scheduling on workers.
 *
 * @packageDocumentation
 */
import { pipeline, step, type Handle } from '../src/index';

/** How many steps the chain of tiny steps has. */
export const CHAIN_STEPS = 20;
/** The grid: layers, and steps per layer. */
export const GRID_LAYERS = 4;
export const GRID_WIDTH = 3;

/**
 * A tiny step: the previous value plus one (the first gets the run's seed).
 *
 * @example
 * tiny({ prev: 3 }); // 4
 */
export function tiny({ prev }: { prev: number }): number {
  return prev + 1;
}

const chainSteps = Array.from({ length: CHAIN_STEPS }, (_, i) => step(tiny).named(`tiny_${String(i)}`));

/** A chain of {@link CHAIN_STEPS} tiny steps; a new `seed` makes every key new. */
export const tinyChain = pipeline('bench_tiny_chain', (p, { seed = 0 }: { seed?: number }) => {
  let prev: Handle<number> | number = seed;
  for (const s of chainSteps) prev = p.call(s, { prev });
  return { last: prev as Handle<number> };
});

/**
 * A CPU-bound step: `work` rounds of arithmetic (about a second's worth, as the benchmark
 * calibrates it), whatever its inputs say; returns a number that depends on all of them.
 *
 * @example
 * burn({ work: 10, seed: 1, inputs: [1, 2] }); // a number
 */
export function burn({ work, seed, a = 0, b = 0, c = 0 }: { work: number; seed: number; a?: number; b?: number; c?: number }): number {
  let x = seed + a + b + c;
  for (let i = 0; i < work; i++) x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
  return x;
}

const gridSteps = Array.from({ length: GRID_LAYERS }, (_, layer) => Array.from({ length: GRID_WIDTH }, (_, col) => step(burn).named(`burn_${String(layer)}_${String(col)}`)));

/** {@link GRID_LAYERS} layers of {@link GRID_WIDTH} CPU-bound steps; each step takes every output of the layer before. */
export const cpuGrid = pipeline('bench_cpu_grid', (p, { work = 0, seed = 0 }: { work?: number; seed?: number }) => {
  let previous: Array<Handle<number>> = [];
  for (const layer of gridSteps) {
    const [a, b, c] = previous;
    previous = layer.map((s, col) => p.call(s, { work, seed: seed * 100 + col, ...(a === undefined ? {} : { a }), ...(b === undefined ? {} : { b }), ...(c === undefined ? {} : { c }) }));
  }
  return Object.fromEntries(previous.map((h, i) => [`out_${String(i)}`, h]));
});
