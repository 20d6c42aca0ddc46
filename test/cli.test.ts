/**
 * The command line on a real store: every command through runCli in-process, one spawn of the
 * real entry point, and the progress logger on a terminal and off one.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { createRunner, pipeline, silentLogger, step, StepcacheError, type RunRecord, type Runner } from '../src';
import { runCli, type CliIo } from '../src/cli/cli';
import { createFileArtifactStore } from '../src/store/artifact-store';
import { createSqliteMetadataStore } from '../src/store/metadata-store';
import { progressLogger } from '../src/cli/progress';
import { runEvent, type RunEvent, type RunEventBody } from '../src/runner/events';
import { removeDir, tempDir } from './support/fixtures';

// a small pipeline: load -> train -> evaluate -> report; evaluate fails when asked to

const load = step(function load_features({ n }: { n: number }) {
  return new Float64Array(n).fill(0.5);
});
const train = step(function train_model({ xs, gamma }: { xs: Float64Array; gamma: number }) {
  return { weights: [xs.length * gamma, 1] };
});
const evaluate = step(function evaluate_model({ model, fail }: { model: { weights: number[] }; fail: boolean }) {
  if (fail) throw new Error('validation set is empty');
  return { accuracy: model.weights.length / 2 };
});
const report = step(function write_report({ score }: { score: { accuracy: number } }) {
  return `accuracy ${score.accuracy}`;
});
const demo = pipeline('demo_pipeline', (p, { fail = false }: { fail?: boolean }) => {
  const xs = p.call(load, { n: 2000 });
  const model = p.call(train, { xs, gamma: 0.1 });
  const score = p.call(evaluate, { model, fail });
  return { report: p.call(report, { score }) };
});

/** A store with two runs: the first fails at evaluate_model (write_report skipped), the second completes with the first two steps cached. */
const makeStore = async (): Promise<{ dir: string; runner: Runner; failed: RunRecord; completed: RunRecord }> => {
  const dir = tempDir('stepcache-cli-');
  const runner = createRunner({ dir, logger: silentLogger });
  const failed = await runner.run(demo, { fail: true }).then(
    () => {
      throw new Error('the first run should fail');
    },
    (e: unknown) => {
      if (!(e instanceof StepcacheError) || e.run === undefined) throw e;
      return e.run;
    },
  );
  const completed = await runner.run(demo, { fail: false });
  return { dir, runner, failed, completed };
};

interface Captured {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const cli = async (argv: string[], io: Partial<CliIo> = {}): Promise<Captured> => {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
    ...io,
  });
  return { code, stdout, stderr };
};

let store: Awaited<ReturnType<typeof makeStore>>;
const stores: Awaited<ReturnType<typeof makeStore>>[] = [];
const freshStore = async () => {
  const s = await makeStore();
  stores.push(s);
  return s;
};

beforeAll(async () => {
  store = await freshStore();
});
afterAll(async () => {
  for (const s of stores) {
    await s.runner.close();
    removeDir(s.dir);
  }
});

describe('the fixture', () => {
  it('has a failed run and a completed run with every status', () => {
    expect(store.failed.status).toBe('failed');
    expect(store.failed.steps.evaluate_model?.status).toBe('failed');
    expect(store.failed.steps.write_report?.status).toBe('skipped');
    expect(store.completed.steps.load_features?.status).toBe('cached');
    expect(store.completed.steps.evaluate_model?.status).toBe('executed');
  });
});

describe('runs list', () => {
  it('shows both runs, newest first, with step counts', async () => {
    const { code, stdout, stderr } = await cli(['runs', 'list', '--dir', store.dir]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+PIPELINE\s+STATUS\s+STARTED\s+DURATION\s+EXECUTED\s+CACHED\s+FAILED\s+SKIPPED\s+PARAMETERS$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain(store.completed.id);
    expect(lines[1]).toMatch(/demo_pipeline\s+completed\s.*\s2\s+2\s+0\s+0\s+fail=false$/);
    expect(lines[2]).toContain(store.failed.id);
    expect(lines[2]).toMatch(/demo_pipeline\s+failed\s.*\s2\s+0\s+1\s+1\s+fail=true$/);
  });

  it('prints JSON with --json, and --limit keeps the most recent', async () => {
    const all = await cli(['runs', 'list', '--json', '--dir', store.dir]);
    expect(all.code).toBe(0);
    const parsed = JSON.parse(all.stdout) as { id: string; status: string; steps: Record<string, number> }[];
    expect(parsed.map((r) => r.id)).toEqual([store.completed.id, store.failed.id]);
    expect(parsed[1]).toMatchObject({ status: 'failed', steps: { executed: 2, cached: 0, failed: 1, skipped: 1 } });
    const limited = await cli(['runs', 'list', '--json', '--limit', '1', '--dir', store.dir]);
    expect((JSON.parse(limited.stdout) as { id: string }[]).map((r) => r.id)).toEqual([store.completed.id]);
  });

  it('reads the store from STEPCACHE_DIR, relative to the working directory', async () => {
    const { code, stdout } = await cli(['runs', 'list'], { env: { STEPCACHE_DIR: path.basename(store.dir) }, cwd: path.dirname(store.dir) });
    expect(code).toBe(0);
    expect(stdout).toContain(store.completed.id);
  });

  it('refuses a directory that holds no store, without creating one', async () => {
    const missing = path.join(store.dir, 'nothing-here');
    const { code, stderr } = await cli(['runs', 'list', '--dir', missing]);
    expect(code).toBe(2);
    expect(stderr).toBe(`stepcache: there is no stepcache store in ${missing} (${missing} does not exist); pass --dir <path> or set STEPCACHE_DIR to the directory a runner uses.\n`);
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('refuses an invalid --limit, naming the option', async () => {
    const { code, stderr } = await cli(['runs', 'list', '--limit', 'lots', '--dir', store.dir]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^stepcache: option '--limit <n>' argument 'lots' is invalid\. Expected a whole number of 1 or more\.\n$/);
  });

  it('colours statuses on a terminal, unless NO_COLOR is set, keeping the columns aligned', async () => {
    const coloured = await cli(['runs', 'list', '--dir', store.dir], { isTTY: true });
    expect(coloured.stdout).toContain('\x1b[32mcompleted\x1b[0m');
    expect(coloured.stdout).toContain('\x1b[31mfailed\x1b[0m');
    const plain = await cli(['runs', 'list', '--dir', store.dir], { isTTY: true, env: { NO_COLOR: '1' } });
    expect(plain.stdout).not.toContain('\x1b[');
    expect(coloured.stdout.replace(/\x1b\[\d+m/g, '')).toBe(plain.stdout);
  });
});

describe('runs list pages and runs prune', () => {
  const manyRuns = async (n: number): Promise<{ dir: string; ids: string[] }> => {
    const s = await freshStore();
    const keyv = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${path.join(s.dir, 'metadata.sqlite')}` }), namespace: 'stepcache', serialize: JSON.stringify, deserialize: JSON.parse });
    const ids = Array.from({ length: n }, (_, i) => `old${String(i).padStart(4, '0')}`);
    // Older than both runs of the fixture, newest last.
    await keyv.setMany(ids.map((id, i) => ({ key: `run:${id}`, value: { ...s.completed, id, startedAt: new Date(Date.UTC(2020, 0, 1, 0, i)).toISOString() } })));
    // The run index is built from these records on first use.
    await keyv.delete('meta:run-index');
    await keyv.disconnect();
    return { dir: s.dir, ids: [s.completed.id, s.failed.id, ...ids.reverse()] };
  };

  it('shows the 20 most recent by default, says there are more, and shows them all with --all', async () => {
    const { dir, ids } = await manyRuns(30);
    const page = await cli(['runs', 'list', '--dir', dir]);
    const lines = page.stdout.trimEnd().split('\n');
    expect(lines.slice(1, -1).map((l) => l.split(/\s+/)[0])).toEqual(ids.slice(0, 20));
    expect(lines.at(-1)).toBe('(older runs not shown: --limit <n> or --all for more)');
    const all = await cli(['runs', 'list', '--all', '--json', '--dir', dir]);
    expect((JSON.parse(all.stdout) as { id: string }[]).map((r) => r.id)).toEqual(ids);
    expect((await cli(['runs', 'list', '--all', '--limit', '3', '--dir', dir])).code).toBe(2);
    const failed = await cli(['runs', 'list', '--status', 'failed', '--json', '--dir', dir]);
    expect((JSON.parse(failed.stdout) as { id: string }[]).map((r) => r.id)).toEqual([ids[1]]);
  });

  it('prune keeps the most recent --keep-last and drops those older than --older-than', async () => {
    const { dir, ids } = await manyRuns(10);
    expect(await cli(['runs', 'prune', '--keep-last', '8', '--dir', dir])).toEqual({ code: 0, stdout: 'Deleted 4 runs.\n', stderr: '' });
    const left = await cli(['runs', 'list', '--all', '--json', '--dir', dir]);
    expect((JSON.parse(left.stdout) as { id: string }[]).map((r) => r.id)).toEqual(ids.slice(0, 8));
    expect((await cli(['runs', 'prune', '--older-than', '365d', '--json', '--dir', dir])).stdout).toBe(JSON.stringify({ runs: ids.slice(2, 8) }, null, 2) + '\n');
    expect((await cli(['runs', 'show', ids[7] as string, '--dir', dir])).code).toBe(2);
    expect((await cli(['runs', 'prune', '--dir', dir])).code).toBe(2);
  });
});

describe('damaged metadata rows and broken entries', () => {
  it('are reported once with their key and skipped by every command and by later runs; doctor lists them and --repair drops them', async () => {
    const s = await freshStore();
    const entries = await s.runner.cache.list();
    const byStep = (name: string) => entries.find((e) => e.step === name) as (typeof entries)[number];
    const metadataFile = path.join(s.dir, 'metadata.sqlite');
    const keyv = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${metadataFile}` }), namespace: 'stepcache', serialize: JSON.stringify, deserialize: JSON.parse });
    await keyv.set(`run:${s.failed.id}`, { ...s.failed, status: 'exploded' });
    await keyv.set(`runidx:${s.completed.startedAt}:${s.completed.id}`, { id: s.completed.id, steps: 'lost' });
    await keyv.set('latest:demo_pipeline:train_model', { key: 'half' });
    await keyv.set(`entry:${byStep('evaluate_model').key}`, { key: byStep('evaluate_model').key, outputs: 'lost' });
    await keyv.disconnect();

    for (const argv of [['runs', 'list'], ['runs', 'list', '--all'], ['cache', 'ls'], ['cache', 'prune', '--step', 'write_report'], ['runs', 'show', s.completed.id]]) {
      const { code, stderr } = await cli([...argv, '--dir', s.dir]);
      expect({ argv, code }).toEqual({ argv, code: 0 });
      const warnings = stderr.split('\n').filter((l) => l !== '');
      expect(new Set(warnings).size).toBe(warnings.length);
      for (const w of warnings) expect(w).toMatch(/^stepcache: warning: (run|run summary|cache entry) \S+ /);
    }
    // A later run of the pipeline completes (the broken entries execute again).
    const later = createRunner({ dir: s.dir, logger: silentLogger });
    expect((await later.run(demo, { fail: false })).status).toBe('completed');
    await later.close();

    const found = await cli(['doctor', '--json', '--dir', s.dir]);
    expect(found.code).toBe(0);
    const report = JSON.parse(found.stdout) as { damaged: { row: string }[]; broken: { step: string }[]; repaired: boolean };
    // The later run replaced what it wrote again (an entry it executed anew); the rest stays damaged until repaired.
    const damagedRows = [`run:${s.failed.id}`, `runidx:${s.completed.startedAt}:${s.completed.id}`, 'latest:demo_pipeline:train_model', `entry:${byStep('evaluate_model').key}`];
    expect(report.damaged.map((d) => d.row)).toEqual(expect.arrayContaining(damagedRows.slice(0, 3)));
    for (const d of report.damaged) expect(damagedRows).toContain(d.row);
    expect(report.repaired).toBe(false);
    const text = await cli(['doctor', '--dir', s.dir]);
    expect(text.stdout).toContain(`damaged row run:${s.failed.id}: run ${s.failed.id} field status`);
    expect(text.stdout).toMatch(/run "stepcache doctor --repair" to drop them\.\n$/);

    // Damage that a run does not repair by itself: an entry whose artifact is missing (a file) or
    // damaged (bytes kept inside the entry, one changed), which doctor verifies.
    const metadata = createSqliteMetadataStore(metadataFile);
    const [loadEntry, trainEntry] = await metadata.getEntries([byStep('load_features').key, byStep('train_model').key]);
    await metadata.close();
    fs.rmSync(createFileArtifactStore(path.join(s.dir, 'artifacts')).locate(loadEntry?.outputs['output']?.id as string));
    const inline = trainEntry?.outputs['output']?.inline as string;
    const changed = Buffer.from(Buffer.from(inline, 'base64').toString().replace('1]', '2]')).toString('base64');
    expect(changed).not.toBe(inline);
    const raw = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${metadataFile}` }), namespace: 'stepcache' });
    await raw.set(`entry:${trainEntry?.key as string}`, { ...trainEntry, outputs: { output: { ...trainEntry?.outputs['output'], inline: changed } } });
    await raw.disconnect();
    const broken = JSON.parse((await cli(['doctor', '--json', '--dir', s.dir])).stdout) as { broken: { step: string; problem: string }[] };
    expect(broken.broken.map((b) => b.step).sort()).toEqual(['load_features', 'train_model']);
    expect(broken.broken.find((b) => b.step === 'train_model')?.problem).toMatch(/^output output: content hash is [0-9a-f]{32}, expected [0-9a-f]{32} \(the entry is damaged\)$/);

    const repaired = await cli(['doctor', '--repair', '--dir', s.dir]);
    expect(repaired.stdout).toMatch(/Repaired: dropped [34] damaged rows and 2 cache entries whose artifacts are missing or damaged\.\n$/);
    const healthy = await cli(['doctor', '--dir', s.dir]);
    expect(healthy.stdout).toMatch(/is healthy: \d+ cache entr(y|ies) checked, every row readable\.\n$/);
    expect(healthy.stderr).toBe('');
    expect((await cli(['cache', 'clear', '--yes', '--dir', s.dir])).code).toBe(0);
  });
});

describe('a damaged run record', () => {
  it('is left out of runs list, with a warning naming the field at fault', async () => {
    const s = await freshStore();
    const keyv = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${path.join(s.dir, 'metadata.sqlite')}` }), namespace: 'stepcache' });
    await keyv.set('run:damaged', { ...s.completed, id: 'damaged', steps: { train_model: { name: 'train_model', status: 'x', durationMs: 1 } } });
    await keyv.disconnect();
    const { code, stdout, stderr } = await cli(['runs', 'list', '--dir', s.dir]);
    expect(code).toBe(0);
    expect(stderr).toBe('stepcache: warning: run damaged field steps.train_model.status: expected "executed" | "cached" | "failed" | "skipped", got "x"; it is left out.\n');
    expect(stdout.trimEnd().split('\n')).toHaveLength(3);
  });
});

describe('names, values and messages from the store', () => {
  const RAW_CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/;
  const hostile = '\u001b]0;pwned\u0007\u001b[2J\u009b31m\u202Eexe.txt';

  it('reach the terminal escaped, in every command, on stdout and stderr', async () => {
    const dir = tempDir('stepcache-cli-escape-');
    const runner = createRunner({ dir, logger: silentLogger });
    const shout = step(function shout({ label }: { label: string }) {
      throw new Error(`cannot print ${label}`);
    });
    const echo = step(function echo_label({ label }: { label: string }) {
      return label;
    });
    const hostilePipeline = pipeline('hostile_pipeline', (p, { label }: { label: string }) => ({ echoed: p.call(echo, { label }), shouted: p.call(shout, { label }) }));
    const failed = await runner.run(hostilePipeline, { label: hostile }).catch((e: StepcacheError) => e.run as RunRecord);
    await runner.close();
    const keyv = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${path.join(dir, 'metadata.sqlite')}` }), namespace: 'stepcache' });
    await keyv.set('run:other', { ...failed, id: `other${hostile}`, pipeline: `pipe${hostile}`, startedAt: new Date(Date.now() + 1000).toISOString() });
    await keyv.set('run:damaged', { ...failed, id: `damaged${hostile}`, status: hostile });
    await keyv.disconnect();
    try {
      const commands = [
        ['runs', 'list'],
        ['runs', 'list', '--json'],
        ['runs', 'show', failed.id],
        ['runs', 'show', failed.id, '--json'],
        ['runs', 'show', failed.id, '--verbose'],
        ['runs', 'compare', failed.id, failed.id],
        ['dag', failed.id],
        ['cache', 'ls'],
        ['cache', 'ls', '--json'],
        ['cache', 'ls', '--step', hostile],
        ['runs', 'show', hostile],
        ['runs', hostile],
      ];
      for (const argv of commands) {
        const { stdout, stderr } = await cli([...argv, '--dir', dir]);
        expect({ argv, out: RAW_CONTROL.test(stdout), err: RAW_CONTROL.test(stderr) }).toEqual({ argv, out: false, err: false });
      }
      const show = await cli(['runs', 'show', failed.id, '--dir', dir]);
      expect(show.stdout).toContain('cannot print ]0;pwned [2J\\x9b31m\\u202eexe.txt');
      const asJson = await cli(['runs', 'show', failed.id, '--json', '--dir', dir]);
      expect((JSON.parse(asJson.stdout) as RunRecord).parameters).toEqual({ label: hostile });
    } finally {
      removeDir(dir);
    }
  });
});

describe('runs show', () => {
  it('prints every step with its status, duration and reason', async () => {
    const failed = await cli(['runs', 'show', store.failed.id, '--dir', store.dir]);
    expect(failed.code).toBe(0);
    expect(failed.stdout).toContain(`Run ${store.failed.id} of pipeline demo_pipeline: failed`);
    expect(failed.stdout).toMatch(/load_features\s+executed\s+\S+\s+it was never cached before/);
    expect(failed.stdout).toMatch(/evaluate_model\s+failed\s+\S+\s+.*validation set is empty/);
    expect(failed.stdout).toMatch(/write_report\s+skipped\s+\S+\s+upstream step evaluate_model did not complete/);
    const completed = await cli(['runs', 'show', store.completed.id, '--dir', store.dir]);
    expect(completed.stdout).toMatch(new RegExp(`load_features\\s+cached\\s+\\S+\\s+cached from ${store.failed.id}`));
    expect(completed.stdout).toMatch(/evaluate_model\s+executed\s+\S+\s+\S+/);
  });

  it('accepts a unique id prefix', async () => {
    const prefix = store.completed.id.slice(0, store.completed.id.length - 4);
    const others = [store.failed.id].filter((id) => id.startsWith(prefix));
    expect(others).toEqual([]);
    const { code, stdout } = await cli(['runs', 'show', prefix, '--dir', store.dir]);
    expect(code).toBe(0);
    expect(stdout).toContain(`Run ${store.completed.id}`);
  });

  it('refuses an ambiguous prefix with exit code 2, listing the candidates', async () => {
    const s = await freshStore();
    const keyv = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${path.join(s.dir, 'metadata.sqlite')}` }), namespace: 'stepcache', serialize: JSON.stringify, deserialize: JSON.parse });
    await keyv.set('run:abcd1111', { ...s.completed, id: 'abcd1111' });
    await keyv.set('run:abcd2222', { ...s.completed, id: 'abcd2222' });
    await keyv.disconnect();
    const { code, stderr } = await cli(['runs', 'show', 'abcd', '--dir', s.dir]);
    expect(code).toBe(2);
    expect(stderr).toContain('run id prefix "abcd" matches 2 runs (abcd1111, abcd2222); give more of the id.');
    expect((await cli(['runs', 'show', 'abcd2', '--dir', s.dir])).stdout).toContain('Run abcd2222');
  });

  it('takes a prefix of 4 characters or more, never fewer', async () => {
    expect((await cli(['runs', 'show', store.completed.id.slice(0, 4), '--dir', store.dir])).stdout).toContain(`Run ${store.completed.id}`);
    const short = await cli(['runs', 'show', store.completed.id.slice(0, 3), '--dir', store.dir]);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('(a prefix needs at least 4 characters)');
  });

  it('takes latest and latest~N, by start time', async () => {
    expect((await cli(['runs', 'show', 'latest', '--dir', store.dir])).stdout).toContain(`Run ${store.completed.id}`);
    expect((await cli(['runs', 'show', 'latest~1', '--dir', store.dir])).stdout).toContain(`Run ${store.failed.id}`);
    const beyond = await cli(['runs', 'show', 'latest~2', '--dir', store.dir]);
    expect([beyond.code, beyond.stderr]).toEqual([2, `stepcache: there is no run "latest~2": the store in ${store.dir} has 2 runs.\n`]);
    expect((await cli(['runs', 'compare', 'latest~1', 'latest', '--dir', store.dir])).code).toBe(0);
  });

  it('answers an unknown id with exit code 2 and the most recent run ids on one line', async () => {
    const { code, stdout, stderr } = await cli(['runs', 'show', 'no-such-run', '--dir', store.dir]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.split('\n')).toEqual([expect.stringMatching(/^stepcache: there is no run "no-such-run"/), '']);
    expect(stderr).toContain(`the most recent runs are: ${store.completed.id} (demo_pipeline, completed), ${store.failed.id} (demo_pipeline, failed)`);
    expect(stderr).not.toMatch(/\bat \S+:\d+/);
  });

  it('prints a stack trace only with --verbose', async () => {
    const { code, stderr } = await cli(['runs', 'show', 'no-such-run', '--verbose', '--dir', store.dir]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^stepcache: there is no run "no-such-run"/);
    expect(stderr).toMatch(/\n\s+at \S+/);
  });

  it('prints the record with --json', async () => {
    const { stdout } = await cli(['runs', 'show', store.failed.id, '--json', '--dir', store.dir]);
    expect((JSON.parse(stdout) as RunRecord).steps.evaluate_model?.error).toContain('validation set is empty');
  });
});

describe('cache ls', () => {
  it('lists entries with humanized ages and sizes', async () => {
    const { code, stdout } = await cli(['cache', 'ls', '--dir', store.dir]);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^STEP\s+PIPELINE\s+AGE\s+SIZE\s+LAST USED\s+KEY$/);
    expect(lines.slice(1, -1).map((l) => l.split(/\s+/)[0]).sort()).toEqual(['evaluate_model', 'load_features', 'train_model', 'write_report']);
    expect(stdout).toMatch(/load_features\s+demo_pipeline\s+\d+[smhd]\s+16\.0 kB\s+\d+[smhd] ago\s+[0-9a-f]{12}\n/);
    expect(lines.at(-1)).toBe('4 cache entries');
  });

  it('filters by --step, and prints JSON with --json', async () => {
    const { stdout } = await cli(['cache', 'ls', '--step', 'train_model', '--json', '--dir', store.dir]);
    const entries = JSON.parse(stdout) as { step: string; bytes: number }[];
    expect(entries.map((e) => e.step)).toEqual(['train_model']);
    const none = await cli(['cache', 'ls', '--step', 'nope', '--dir', store.dir]);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe(`No cache entries of step nope in ${store.dir}.\n`);
  });
});

describe('cache prune', () => {
  it("removes the entries of one step, and only those", async () => {
    const s = await freshStore();
    const { code, stdout, stderr } = await cli(['cache', 'prune', '--step', 'load_features', '--grace', '0s', '--dir', s.dir]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Removed 1 cache entry and 1 artifact \(16\.0 kB\); \d+ B of artifacts remain\.\n$/);
    expect((await s.runner.cache.list()).map((e) => e.step).sort()).toEqual(['evaluate_model', 'train_model', 'write_report']);
  });

  it('keeps artifacts written recently unless --grace says otherwise, and says so', async () => {
    const s = await freshStore();
    const { code, stdout } = await cli(['cache', 'prune', '--step', 'load_features', '--dir', s.dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Removed 1 cache entry and 0 artifacts \(0 B\); \d+ B of artifacts remain\.\nArtifacts written less than 10m ago stay until a later prune \(see --grace\)\.\n$/);
    const again = await cli(['cache', 'prune', '--grace', '0s', '--dir', s.dir]);
    expect(again.stdout).toMatch(/^Removed 0 cache entries and 1 artifact \(16\.0 kB\);/);
  });

  it('lists what would go with --dry-run, and removes nothing', async () => {
    const { code, stdout } = await cli(['cache', 'prune', '--step', 'train_model', '--older-than', '0ms', '--dry-run', '--dir', store.dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/train_model\s+demo_pipeline/);
    expect(stdout).toContain('Would remove 1 cache entry (dry run: nothing was removed).');
    const young = await cli(['cache', 'prune', '--older-than', '7d', '--dry-run', '--dir', store.dir]);
    expect(young.stdout).toBe('Nothing to prune: no entry matches.\n');
    expect(await store.runner.cache.list({ step: 'train_model' })).toHaveLength(1);
  });

  it('refuses --dry-run with --max-bytes', async () => {
    const { code, stderr } = await cli(['cache', 'prune', '--max-bytes', '1MB', '--dry-run', '--dir', store.dir]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^stepcache: option --dry-run cannot be combined with --max-bytes/);
  });

  it('evicts down to --max-bytes given with a unit', async () => {
    const s = await freshStore();
    const { code, stdout } = await cli(['cache', 'prune', '--max-bytes', '1kB', '--json', '--dir', s.dir]);
    expect(code).toBe(0);
    expect((JSON.parse(stdout) as { remainingBytes: number }).remainingBytes).toBeLessThanOrEqual(1000);
    expect((await s.runner.cache.list()).map((e) => e.step)).not.toContain('load_features');
  });

  it.each([
    [['--older-than', 'soon'], "option '--older-than <duration>' argument 'soon' is invalid. Expected a number with a unit: ms, s, m, h or d (for example 90s, 30m, 12h, 7d)."],
    [['--older-than', '30'], "option '--older-than <duration>' argument '30' is invalid."],
    [['--max-bytes', 'huge'], "option '--max-bytes <size>' argument 'huge' is invalid. Expected a number of bytes, optionally with a unit: 500MB, 2GB"],
    [['--step', ''], "option '--step <name>' argument '' is invalid. Expected a name."],
  ])('refuses %j with exit code 2, naming the option and the allowed form', async (args, message) => {
    const { code, stdout, stderr } = await cli(['cache', 'prune', ...args, '--dir', store.dir]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.startsWith(`stepcache: ${message}`)).toBe(true);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(await store.runner.cache.list()).toHaveLength(4);
  });
});

describe('cache clear', () => {
  it('asks for --yes, then empties the cache', async () => {
    const s = await freshStore();
    const refused = await cli(['cache', 'clear', '--dir', s.dir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(`stepcache: cache clear removes every cache entry and artifact in ${s.dir}, so every step runs again next time; add --yes to confirm.\n`);
    expect(await s.runner.cache.list()).toHaveLength(4);
    const cleared = await cli(['cache', 'clear', '--yes', '--dir', s.dir]);
    expect(cleared.code).toBe(0);
    expect(cleared.stdout).toMatch(/^Removed 4 cache entries and 1 artifact \(16\.\d kB\); 0 B of artifacts remain\.\n$/);
    expect(await s.runner.cache.list()).toEqual([]);
    expect((await cli(['runs', 'list', '--json', '--dir', s.dir])).stdout).toContain(s.completed.id);
  });
});

describe('usage', () => {
  const commands: [string[], string[]][] = [
    [[], ['--dir <path>', '--verbose', 'runs', 'cache', 'dag']],
    [['runs'], ['list', 'show', 'compare']],
    [['runs', 'list'], ['--json', '--limit <n>', '--dir <path>']],
    [['runs', 'show'], ['<id>', '--json']],
    [['runs', 'compare'], ['<a>', '<b>']],
    [['cache'], ['ls', 'prune', 'clear']],
    [['cache', 'ls'], ['--step <name>', '--pipeline <name>', '--json']],
    [['cache', 'prune'], ['--older-than <duration>', '--step <name>', '--pipeline <name>', '--max-bytes <size>', '--grace <duration>', '--dry-run', '--json']],
    [['cache', 'clear'], ['--yes']],
    [['dag'], ['<id>', '--svg <file>', '--mermaid <file>']],
  ];
  it.each(commands)('%j --help exits 0 and lists the options and the exit codes', async (command, expected) => {
    const { code, stdout, stderr } = await cli([...command, '--help']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toContain(`Usage: stepcache ${command.join(' ')}`.trimEnd());
    for (const e of expected) expect(stdout).toContain(e);
    expect(stdout).toContain('Exit codes:\n  0  success\n  1  an operation failed');
  });

  it('refuses unknown commands and options with exit code 2 on one line', async () => {
    const command = await cli(['runz']);
    expect(command).toEqual({ code: 2, stdout: '', stderr: "stepcache: unknown command 'runz' (Did you mean runs?)\n" });
    const option = await cli(['runs', 'list', '--jsn', '--dir', store.dir]);
    expect(option).toEqual({ code: 2, stdout: '', stderr: "stepcache: unknown option '--jsn' (Did you mean --json?)\n" });
    const missing = await cli(['runs', 'show', '--dir', store.dir]);
    expect(missing).toEqual({ code: 2, stdout: '', stderr: "stepcache: missing required argument 'id'\n" });
  });

  it('reports a store that cannot be read with exit code 1', async () => {
    const dir = tempDir('stepcache-cli-broken-');
    try {
      fs.writeFileSync(path.join(dir, 'metadata.sqlite'), 'this is not a database, just text that is long enough to be read as a header');
      const { code, stderr } = await cli(['runs', 'list', '--dir', dir]);
      expect(code).toBe(1);
      expect(stderr).toBe(`stepcache: the store in ${dir} could not be read: SQLITE_NOTADB: file is not a database\n`);
    } finally {
      removeDir(dir);
    }
  });
});

describe('the executable', () => {
  it('runs through tsx from the repository root and exits 0', async () => {
    const root = path.resolve(__dirname, '..');
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child: ChildProcess = execFile(path.join(root, 'node_modules/.bin/tsx'), ['src/cli/main.ts', 'runs', 'list', '--dir', store.dir], { cwd: root, timeout: 60_000 }, (_error, stdout, stderr) =>
        resolve({ code: child.exitCode, stdout, stderr }),
      );
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(store.completed.id);
    expect(result.stdout).toContain(store.failed.id);
  });

  it('ends quietly, with exit code 0, when the reader of its output goes away (as with | head)', async () => {
    const root = path.resolve(__dirname, '..');
    const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
      const child = spawn(path.join(root, 'node_modules/.bin/tsx'), ['src/cli/main.ts', 'runs', 'list', '--dir', store.dir], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      // The reader is gone before the first line is written.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('close', (code, signal) => resolve({ code, signal, stderr }));
    });
    expect(result).toEqual({ code: 0, signal: null, stderr: '' });
  });

  it('prints its version with --version', async () => {
    const version = (JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
    expect(await cli(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('exits 2 through the real process for an unknown run', async () => {
    const root = path.resolve(__dirname, '..');
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child: ChildProcess = execFile(path.join(root, 'node_modules/.bin/tsx'), ['src/cli/main.ts', 'runs', 'show', 'zzz', '--dir', store.dir], { cwd: root, timeout: 60_000 }, (_error, _stdout, stderr) =>
        resolve({ code: child.exitCode, stderr }),
      );
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^stepcache: there is no run "zzz"/);
  });
});

describe('progressLogger', () => {
  const fakeStream = (isTTY: boolean) => {
    const writes: string[] = [];
    return { writes, stream: { isTTY, write: (s: string) => void writes.push(s) } };
  };
  const event = (body: RunEventBody): RunEvent => runEvent('r1', body, 0);
  const failure = new StepcacheError('STEP_FAILED', 'Step evaluate_model failed: validation set is empty', { step: 'evaluate_model' });
  /** A run of four steps up to the start of the third, as the runner reports it. */
  const runEvents: readonly RunEvent[] = [
    event({ type: 'run-started', pipeline: 'demo_pipeline', steps: ['load_features', 'train_model', 'evaluate_model', 'write_report'] }),
    event({ type: 'step-started', step: 'load_features' }),
    event({ type: 'step-cached', step: 'load_features', key: 'k1', cachedFrom: 'r0', outputs: {}, durationMs: 1 }),
    event({ type: 'step-started', step: 'train_model' }),
    event({ type: 'step-executing', step: 'train_model', key: 'k2', reason: { _tag: 'KeyChanged', changes: [{ _tag: 'Parameter', name: 'gamma', before: '0.1', after: '0.2' }] }, message: 'parameter gamma changed (0.1 -> 0.2)' }),
    event({ type: 'warning', kind: 'unverified-entry', message: 'Ignoring the cache entry of step train_model: its signature does not verify.' }),
    event({ type: 'artifact-written', step: 'train_model', output: 'output', id: 'a1', size: 10 }),
    event({ type: 'step-executed', step: 'train_model', key: 'k2', outputs: {}, durationMs: 12_400 }),
    event({ type: 'step-started', step: 'evaluate_model' }),
  ];

  it('on a terminal, keeps one status line updated in place with [done/total]', () => {
    const { writes, stream } = fakeStream(true);
    let clock = 1_000;
    const progress = progressLogger({ stream, total: 4, refreshMs: 0, now: () => clock });
    for (const e of runEvents) progress.onEvent(e), (clock += 3100);
    const statusLines = writes.filter((w) => w.startsWith('\r\x1b[2K[')).map((w) => w.slice('\r\x1b[2K'.length));
    expect(statusLines).toEqual([
      '[0/4] · 0ms elapsed',
      '[0/4] load_features · 3.1s elapsed',
      '[1/4] load_features · 6.2s elapsed',
      '[1/4] train_model · 9.3s elapsed',
      '[1/4] train_model · 12.4s elapsed',
      '[1/4] train_model · 15.5s elapsed',
      '[2/4] train_model · 21.7s elapsed',
      '[2/4] evaluate_model · 24.8s elapsed',
    ]);
    expect(writes.join('')).not.toContain('has started');
    // other lines get their own line above the status line
    expect(writes).toContain('train_model: re-running because parameter gamma changed (0.1 -> 0.2)\n');
    expect(writes).toContain('warning: Ignoring the cache entry of step train_model: its signature does not verify.\n');
    progress.onEvent(event({ type: 'step-failed', step: 'evaluate_model', error: failure, durationMs: 5 }));
    expect(writes.slice(-3)).toEqual(['\r\x1b[2K', 'error: Step evaluate_model failed: validation set is empty\n', '\r\x1b[2K[3/4] evaluate_model · 27.9s elapsed']);
    progress.onEvent(event({ type: 'step-skipped', step: 'write_report', upstream: 'evaluate_model' }));
    expect(writes.at(-1)).toBe('\r\x1b[2K[4/4] write_report · 27.9s elapsed');
    const counts = { executed: 1, cached: 1, failed: 1, skipped: 1 };
    progress.onEvent(event({ type: 'run-finished', pipeline: 'demo_pipeline', status: 'failed', counts, failed: ['evaluate_model'], durationMs: 30_000 }));
    expect(writes.slice(-2)).toEqual(['\r\x1b[2K', 'error: Pipeline run r1 failed: evaluate_model.\n']);
    progress.close();
  });

  it('attributes a failure to the step that failed, however many run at once', () => {
    const { writes, stream } = fakeStream(true);
    const progress = progressLogger({ stream, refreshMs: 0, now: () => 0 });
    progress.onEvent(event({ type: 'run-started', pipeline: 'p', steps: ['a', 'b', 'c'] }));
    for (const step of ['a', 'b', 'c']) progress.onEvent(event({ type: 'step-started', step }));
    const error = new StepcacheError('STEP_FAILED', 'it broke', { step: 'b' });
    progress.onEvent(event({ type: 'step-failed', step: 'b', error, durationMs: 1 }));
    expect(writes.at(-1)).toBe('\r\x1b[2K[1/3] c, a · 0ms elapsed');
    progress.close();
  });

  it('takes the total from the run when none is given, and refreshes the elapsed time', async () => {
    const { writes, stream } = fakeStream(true);
    const progress = progressLogger({ stream, refreshMs: 10 });
    progress.onEvent(event({ type: 'run-started', pipeline: 'p', steps: ['a', 'b'] }));
    progress.onEvent(event({ type: 'step-started', step: 'a' }));
    progress.onEvent(event({ type: 'step-executed', step: 'a', key: 'k', outputs: {}, durationMs: 10 }));
    progress.onEvent(event({ type: 'step-started', step: 'b' }));
    expect(writes.at(-1)).toMatch(/^\r\x1b\[2K\[1\/2\] b · \d+ms elapsed$/);
    const before = writes.length;
    await new Promise((r) => setTimeout(r, 60));
    expect(writes.length).toBeGreaterThan(before);
    progress.onEvent(event({ type: 'step-executed', step: 'b', key: 'k', outputs: {}, durationMs: 60 }));
    const counts = { executed: 2, cached: 0, failed: 0, skipped: 0 };
    progress.onEvent(runEvent('r2', { type: 'run-finished', pipeline: 'p', status: 'completed', counts, failed: [], durationMs: 70 }));
    expect(writes.slice(-2)).toEqual(['\r\x1b[2K', 'Pipeline run r2 has finished in 0.070s.\n']);
    const after = writes.length;
    await new Promise((r) => setTimeout(r, 40));
    expect(writes.length).toBe(after);
  });

  it('off a terminal, prints the runner lines as they come', () => {
    const { writes, stream } = fakeStream(false);
    const progress = progressLogger({ stream, total: 4 });
    for (const e of runEvents) progress.onEvent(e);
    expect(writes).toEqual([
      'Initiating a new run for the pipeline: demo_pipeline.\n',
      'Step load_features has started.\n',
      'Using cached version of load_features.\n',
      'Step train_model has started.\n',
      'train_model: re-running because parameter gamma changed (0.1 -> 0.2)\n',
      'warning: Ignoring the cache entry of step train_model: its signature does not verify.\n',
      'Step train_model has finished in 12.400s.\n',
      'Step evaluate_model has started.\n',
    ]);
    expect(writes.join('')).not.toContain('\r');
  });

  it('prints what is logged outside events on lines of its own', () => {
    const { writes, stream } = fakeStream(false);
    const progress = progressLogger({ stream });
    progress.info('note');
    progress.warn('careful');
    progress.error('broken');
    expect(writes).toEqual(['note\n', 'warning: careful\n', 'error: broken\n']);
  });

  it('follows a real run on a terminal, as the runner\'s logger, next to another subscriber', async () => {
    const s = await freshStore();
    const { writes, stream } = fakeStream(true);
    const progress = progressLogger({ stream, refreshMs: 0 });
    const seen: RunEvent[] = [];
    const runner = createRunner({ dir: s.dir, logger: progress, onEvent: (e) => seen.push(e) });
    try {
      await runner.run(demo, { fail: false });
    } finally {
      await runner.close();
    }
    const statuses = writes.filter((w) => w.startsWith('\r\x1b[2K[')).map((w) => /\[(\d+)\/(\d+)\]/.exec(w)?.slice(1).join('/'));
    expect(statuses).toContain('4/4');
    expect(writes.at(-1)).toMatch(/^Pipeline run \S+ has finished in .+\n$/);
    expect(seen.filter((e) => e.type === 'step-cached')).toHaveLength(4);
  });
});

// The two commands that draw need src/render.
describe('commands that render', () => {
  it('runs compare prints the comparison table', async () => {
    const { code, stdout, stderr } = await cli(['runs', 'compare', store.failed.id, store.completed.id.slice(0, -3), '--dir', store.dir]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('Speed Increase');
    expect(stdout).toContain('load_features');
  });

  it('runs compare answers an unknown id with exit code 2', async () => {
    const { code, stderr } = await cli(['runs', 'compare', store.failed.id, 'nope', '--dir', store.dir]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^stepcache: there is no run "nope"/);
  });

  it('dag prints a text tree of the run', async () => {
    const { code, stdout } = await cli(['dag', store.failed.id, '--dir', store.dir]);
    expect(code).toBe(0);
    for (const name of ['load_features', 'train_model', 'evaluate_model', 'write_report']) expect(stdout).toContain(name);
  });

  it('dag --svg and --mermaid write files', async () => {
    const out = tempDir('stepcache-cli-dag-');
    try {
      const { code, stdout } = await cli(['dag', store.completed.id, '--svg', 'run.svg', '--mermaid', 'run.mmd', '--dir', store.dir], { cwd: out });
      expect(code).toBe(0);
      expect(stdout).toBe(`Wrote ${path.join(out, 'run.svg')}\nWrote ${path.join(out, 'run.mmd')}\n`);
      expect(fs.readFileSync(path.join(out, 'run.svg'), 'utf8').startsWith('<svg')).toBe(true);
      const mermaid = fs.readFileSync(path.join(out, 'run.mmd'), 'utf8');
      expect(mermaid).toMatch(/^graph LR$/m);
      expect(mermaid).toContain('s_load_features -->');
      expect(mermaid).toMatch(/class s_load_features\b.*cached/);
    } finally {
      removeDir(out);
    }
  });

  it('dag reports a file it cannot write with exit code 1', async () => {
    const { code, stderr } = await cli(['dag', store.completed.id, '--svg', path.join(store.dir, 'no', 'such', 'dir', 'x.svg'), '--dir', store.dir]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^stepcache: could not write .*x\.svg: ENOENT/);
  });
});
