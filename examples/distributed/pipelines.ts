/**
 * The pipeline module that clients and workers share: workers load it (`stepcache worker
 * --module examples/distributed/pipelines.ts`) and find a job's step in the pipelines it exports.
 */
import { pipeline, step } from '../../src';

export const loadRows = step(function load_rows({ n }: { n: number }) {
  return Array.from({ length: n }, (_, i) => Math.sin(i));
});

export const shard = step(function shard_sum({ rows, part, parts }: { rows: number[]; part: number; parts: number }) {
  return rows.filter((_, i) => i % parts === part).reduce((a, b) => a + b, 0);
});

export const combine = step(function combine(sums: Record<string, number>) {
  return Object.values(sums).reduce((a, b) => a + b, 0);
});

export const sharded = pipeline('sharded_sum', (p, { n = 100_000, parts = 4 }: { n?: number; parts?: number }) => {
  const rows = p.call(loadRows, { n });
  const sums = Object.fromEntries(Array.from({ length: parts }, (_, part) => [`s${String(part)}`, p.call(shard.named(`shard_${String(part)}`), { rows, part, parts })]));
  return { total: p.call(combine, sums) };
});
