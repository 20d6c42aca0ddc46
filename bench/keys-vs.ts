/**
 * Keys side by side: the cost of a cached step (a fully cached run of a 1000-step chain, per step)
 * and of a step's code fingerprint (the first, parsing included, and a later one), in this tree and
 * in another stepcache tree (an older commit checked out beside it), measured interleaved in one
 * run, each measurement in a fresh process (`bench/keys-vs-child.ts`). Prints the medians and the
 * ratio of this tree to the other (goal: at most 1.10).
 *
 * Usage: `node --import tsx bench/keys-vs.ts <other tree> [rounds]`, e.g. after
 * `git worktree add /tmp/old-282a052 282a052` (with `node_modules` linked into it).
 *
 * @packageDocumentation
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { KeysChildResult } from './keys-vs-child';

const REPO = path.resolve(__dirname, '..');
const CHILD = path.join(__dirname, 'keys-vs-child.ts');

type What = 'warm' | 'cached' | 'fingerprint';

const runChild = (tree: string, dir: string, what: What): Promise<KeysChildResult> =>
  new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', CHILD, tree, dir, what], { cwd: REPO, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`the child process failed (${tree}, ${what}): ${error.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as KeysChildResult);
    });
  });

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

interface Samples {
  cachedStepMs: number[];
  firstFingerprintMs: number[];
  laterFingerprintMs: number[];
}

const main = async (): Promise<void> => {
  const [otherArg, roundsArg] = process.argv.slice(2);
  if (otherArg === undefined || !fs.existsSync(path.join(otherArg, 'src', 'index.ts'))) throw new Error('usage: keys-vs.ts <other stepcache tree> [rounds]');
  const rounds = Number(roundsArg ?? 7);
  const trees = { other: path.resolve(otherArg), this: REPO };
  const stores = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-keys-vs-'));
  try {
    const samples: Record<keyof typeof trees, Samples> = {
      other: { cachedStepMs: [], firstFingerprintMs: [], laterFingerprintMs: [] },
      this: { cachedStepMs: [], firstFingerprintMs: [], laterFingerprintMs: [] },
    };
    const dirOf = (name: keyof typeof trees): string => path.join(stores, name);
    for (const name of ['other', 'this'] as const) await runChild(trees[name], dirOf(name), 'warm');
    for (let round = 0; round < rounds; round++) {
      // Alternate which tree goes first, so that drift in the machine's load falls on both.
      const order = round % 2 === 0 ? (['other', 'this'] as const) : (['this', 'other'] as const);
      for (const name of order) {
        const cached = await runChild(trees[name], dirOf(name), 'cached');
        samples[name].cachedStepMs.push(cached.firstMs);
        const fp = await runChild(trees[name], dirOf(name), 'fingerprint');
        samples[name].firstFingerprintMs.push(fp.firstMs);
        samples[name].laterFingerprintMs.push(fp.next);
      }
    }
    const row = (label: string, key: keyof Samples, unit: string, digits: number): string => {
      const other = median(samples.other[key]);
      const mine = median(samples.this[key]);
      return `${label.padEnd(34)} ${`${other.toFixed(digits)} ${unit}`.padStart(12)} ${`${mine.toFixed(digits)} ${unit}`.padStart(12)} ${`${(mine / other).toFixed(2)}x`.padStart(8)}`;
    };
    console.log(`medians of ${rounds} interleaved rounds, each in a fresh process; other tree: ${trees.other}`);
    console.log(`${''.padEnd(34)} ${'other'.padStart(12)} ${'this'.padStart(12)} ${'ratio'.padStart(8)}`);
    console.log(row('cached step (1000-step chain)', 'cachedStepMs', 'ms', 3));
    console.log(row('first fingerprint (with parse)', 'firstFingerprintMs', 'ms', 1));
    console.log(row('later fingerprint of the step', 'laterFingerprintMs', 'ms', 3));
  } finally {
    fs.rmSync(stores, { recursive: true, force: true });
  }
};

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
