/**
 * Scheduling: nodes run as soon as their upstream nodes are done, at most `concurrency` at a
 * time, earlier nodes first; the dependents of a failed node are skipped.
 *
 * @packageDocumentation
 */
import type { GraphNode } from '../pipeline/pipeline';
import type { RunContext } from './context';

/**
 * @internal Resolves every node of the run with `resolve` (which returns nothing when it resolved
 * the node at once); settles when none is left, or rejects with what a resolution threw.
 */
export const schedule = (ctx: RunContext, concurrency: number, resolve: (ctx: RunContext, node: GraphNode) => Promise<void> | undefined): Promise<void> => {
  const { nodes } = ctx.graph;
  const waiting = nodes.map((n) => n.upstream.length);
  const dependents: number[][] = nodes.map(() => []);
  for (const n of nodes) for (const u of n.upstream) (dependents[u] as number[]).push(n.index);
  const ready = nodes.filter((n) => n.upstream.length === 0).map((n) => n.index);
  const statusOf = (index: number) => ctx.states[index]?.status;
  let active = 0;
  let finished = 0;
  return new Promise((done, fail) => {
    /** Skips a node and everything below it, with a work list: a chain of any length fits. */
    const skip = (first: number, upstream: string): void => {
      const below = [first];
      for (let index = below.pop(); index !== undefined; index = below.pop()) {
        if (statusOf(index) !== 'pending') continue;
        ctx.emit({ type: 'step-skipped', step: (nodes[index] as GraphNode).name, upstream });
        finished++;
        const next = dependents[index] as number[];
        for (let i = next.length - 1; i >= 0; i--) below.push(next[i] as number); // depth first, in order, as before
      }
    };
    /** Queues a node that became ready, in node order (in a chain, the queue is empty: it is appended). */
    const enqueue = (d: number): void => {
      const last = ready.length - 1;
      if (last === -1 || (ready[last] as number) < d) {
        ready.push(d);
        return;
      }
      let at = 0;
      while ((ready[at] as number) < d) at++;
      ready.splice(at, 0, d);
    };
    const settle = (index: number): void => {
      const below = dependents[index] as number[];
      if (below.length === 0) return;
      if (statusOf(index) === 'failed') {
        const name = (nodes[index] as GraphNode).name;
        for (const d of below) skip(d, name);
        return;
      }
      for (let i = 0; i < below.length; i++) {
        const d = below[i] as number;
        if (--(waiting[d] as number) === 0 && statusOf(d) === 'pending') enqueue(d);
      }
    };
    const pump = (): void => {
      if (finished === nodes.length) return done();
      while (active < concurrency && ready.length > 0) {
        const index = ready.shift() as number;
        active++;
        let resolving: Promise<void> | undefined;
        try {
          resolving = resolve(ctx, nodes[index] as GraphNode);
        } catch (e) {
          return fail(e);
        }
        if (resolving === undefined) {
          // Resolved at once (a step served from the cache): on to its dependents in this loop, so
          // that a chain of any length needs neither a stack frame nor a turn of the event loop per step.
          active--;
          finished++;
          settle(index);
          if (finished === nodes.length) return done();
          continue;
        }
        // What throws past a node's resolution rejects the run instead of leaving it waiting forever.
        resolving
          .then(() => {
            active--;
            finished++;
            settle(index);
            pump();
          })
          .catch(fail);
      }
    };
    pump();
  });
};
