import * as fs from 'node:fs';
import * as path from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { createRunner, pipeline, step, type Runner } from '../src';
import { keyedContentHashing, plainContentHashing } from '../src/hash/hashers';
import { collectingLogger, storePerTest } from './support/fixtures';

const store = storePerTest();

let executions = 0;
const train = step(function train_model({ lr }: { lr: number }) {
  executions++;
  return { weights: [lr * 2, lr * 3] };
});
const p = pipeline('team', (p) => ({ model: p.call(train, { lr: 0.1 }) }));
const tuned = pipeline('team', (p, { lr }: { lr: number }) => ({ model: p.call(train, { lr }) }));

let evaluations = 0;
const evaluate = step(function evaluate_model({ model }: { model: { weights: number[] } }) {
  evaluations++;
  return model.weights.length;
});
const twoSteps = pipeline('team', (p) => {
  const model = p.call(train, { lr: 0.1 });
  return { model, size: p.call(evaluate, { model }) };
});

const ANOTHER_SECRET = 'entries in this store are signed with another secret: are two teams sharing this store with different secrets?';

const teamRunner = (keyv: Keyv, secret: string | undefined) => {
  const logger = collectingLogger();
  const runner = createRunner({ dir: store.dir(), metadata: keyv, logger, ...(secret === undefined ? {} : { secret }) });
  store.keep(runner);
  return { runner, logger };
};

beforeEach(() => {
  executions = 0;
  evaluations = 0;
});

describe('signed cache entries on a shared store', () => {
  it('serves entries signed with the same secret', async () => {
    const keyv = new Keyv();
    await teamRunner(keyv, 'team-secret').runner.run(p);
    const { runner, logger } = teamRunner(keyv, 'team-secret');
    const run = await runner.run(p);
    expect(run.steps.train_model?.status).toBe('cached');
    expect(logger.warnings).toEqual([]);
    expect(executions).toBe(1);
  });

  it('ignores and reports entries written without the secret', async () => {
    const keyv = new Keyv();
    await teamRunner(keyv, undefined).runner.run(p); // someone without the secret
    const { runner, logger } = teamRunner(keyv, 'team-secret');
    const run = await runner.run(p);
    expect(run.steps.train_model?.status).toBe('executed');
    expect(logger.warnings.some((w) => w.includes('train_model') && w.includes('is not signed'))).toBe(true);
    expect(executions).toBe(2);
  });

  it('ignores entries signed with another secret, and entries altered after signing', async () => {
    const keyv = new Keyv();
    await teamRunner(keyv, 'other-secret').runner.run(p);
    expect((await teamRunner(keyv, 'team-secret').runner.run(p)).steps.train_model?.status).toBe('executed');

    // alter the (now validly signed) entry: point it at another run
    const entryKeys: string[] = [];
    for await (const [key] of keyv.iterator!(undefined)) if (typeof key === 'string' && key.startsWith('entry:')) entryKeys.push(key);
    for (const key of entryKeys) {
      const entry = (await keyv.get(key)) as Record<string, unknown>;
      await keyv.set(key, { ...entry, runId: 'forged-run' });
      const latest = `latest:${String(entry['pipeline'])}:${String(entry['step'])}`;
      await keyv.set(latest, { ...entry, runId: 'forged-run' });
      await keyv.set(`latest-step:${String(entry['step'])}`, { ...entry, runId: 'forged-run' });
    }
    const { runner, logger } = teamRunner(keyv, 'team-secret');
    const run = await runner.run(p);
    expect(run.steps.train_model?.status).toBe('executed');
    expect(logger.warnings.length).toBeGreaterThan(0);
    expect(await run.output('model')).toEqual({ weights: [0.2, 0.30000000000000004] });
  });

  it('covers the bytes of an output kept inside its entry: one flipped in the stored rows is a miss, never a wrong value', async () => {
    const keyv = new Keyv();
    const first = await teamRunner(keyv, 'team-secret').runner.run(p);
    const inline = first.steps.train_model?.outputs?.['output']?.inline as string;
    expect(Buffer.from(inline, 'base64').toString()).toBe('{"weights":[0.2,0.30000000000000004]}');
    // another value of the same length, its base64 valid: only the signature can tell
    const forged = Buffer.from(Buffer.from(inline, 'base64').toString().replace('0.2,', '0.9,')).toString('base64');
    const rows: string[] = [];
    for await (const [key] of keyv.iterator!(undefined)) if (typeof key === 'string' && /^(entry|latest|latest-step):/.test(key)) rows.push(key);
    let flipped = 0;
    for (const key of rows) {
      const row = (await keyv.get(key)) as { outputs?: Record<string, { inline?: string }> } | undefined;
      const output = row?.outputs?.['output'];
      if (output?.inline !== inline) continue;
      await keyv.set(key, { ...row, outputs: { ...row?.outputs, output: { ...output, inline: forged } } });
      flipped++;
    }
    expect(flipped).toBeGreaterThan(0);
    const { runner, logger } = teamRunner(keyv, 'team-secret');
    const run = await runner.run(p);
    expect(run.steps.train_model?.status).toBe('executed');
    expect(logger.warnings.some((w) => w.includes('train_model'))).toBe(true);
    expect(await run.output('model')).toEqual({ weights: [0.2, 0.30000000000000004] });
    expect(executions).toBe(2);
  });

  it('refuses a signed entry copied under another key: a miss with a warning, and the step executes', async () => {
    // the embedded SQLite store, reached through a raw handle
    const raw = new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${path.join(store.dir(), 'metadata.sqlite')}`, busyTimeout: 10_000 }), namespace: 'stepcache', serialize: JSON.stringify, deserialize: JSON.parse });
    try {
      const signed = (): { runner: Runner; logger: ReturnType<typeof collectingLogger> } => {
        const logger = collectingLogger();
        const runner = createRunner({ dir: store.dir(), logger, secret: 'team-secret' });
        store.keep(runner);
        return { runner, logger };
      };
      const high = await signed().runner.run(tuned, { lr: 0.2 });
      const low = await signed().runner.run(tuned, { lr: 0.1 }); // the latest entry of the step
      const lowKey = low.steps.train_model?.key as string;
      const highKey = high.steps.train_model?.key as string;
      expect(lowKey).not.toBe(highKey);
      const copied: unknown = await raw.get(`entry:${lowKey}`);
      expect(copied).toMatchObject({ key: lowKey, step: 'train_model' });
      await raw.set(`entry:${highKey}`, copied); // the lr 0.1 entry, served for lr 0.2?
      executions = 0;
      const { runner, logger } = signed();
      const run = await runner.run(tuned, { lr: 0.2 });
      expect(run.steps.train_model?.status).toBe('executed');
      expect(executions).toBe(1);
      expect(await run.output('model')).toEqual({ weights: [0.4, 0.6000000000000001] });
      expect(logger.warnings.some((w) => w.includes('train_model') && w.includes('signed for another key'))).toBe(true);
      // the copy was replaced by the step's own entry
      const again = await signed().runner.run(tuned, { lr: 0.2 });
      expect(again.steps.train_model?.status).toBe('cached');
    } finally {
      await raw.disconnect();
    }
  });

  it('refuses unsigned entries naming the step, and replaces them with signed ones', async () => {
    const keyv = new Keyv();
    await teamRunner(keyv, undefined).runner.run(p);
    const { runner, logger } = teamRunner(keyv, 'team-secret');
    expect((await runner.run(p)).steps.train_model?.status).toBe('executed');
    expect(logger.warnings.filter((w) => w.includes('train_model') && w.includes('is not signed'))).toHaveLength(1);
    const next = teamRunner(keyv, 'team-secret');
    expect((await next.runner.run(p)).steps.train_model?.status).toBe('cached');
    expect(next.logger.warnings).toEqual([]);
    expect(executions).toBe(2);
  });

  it('says once per run that entries are signed with another secret, when two secrets share a store', async () => {
    const keyv = new Keyv();
    await teamRunner(keyv, 'team-a').runner.run(twoSteps);
    const b = teamRunner(keyv, 'team-b');
    const run = await b.runner.run(twoSteps);
    expect(run.steps.train_model?.status).toBe('executed');
    expect(run.steps.evaluate_model?.status).toBe('executed');
    expect(b.logger.warnings.filter((w) => w.toLowerCase().includes(ANOTHER_SECRET))).toHaveLength(1);
    expect(b.logger.warnings.filter((w) => w.includes('evaluate_model'))).toHaveLength(1);
    // the other team's next run says so again, once
    const a = teamRunner(keyv, 'team-a');
    await a.runner.run(twoSteps);
    expect(a.logger.warnings.filter((w) => w.toLowerCase().includes(ANOTHER_SECRET))).toHaveLength(1);
    expect(executions).toBe(3);
    // artifact ids are keyed with the secret, so the evaluation's key differs per team: team a's stays
    expect(evaluations).toBe(2);
  });

  it('names artifacts by a hash keyed with the secret, so their bytes cannot be swapped for colliding ones', async () => {
    const keyv = new Keyv();
    const run = await teamRunner(keyv, 'team-secret').runner.run(p);
    const output = run.steps.train_model?.outputs?.['output'];
    const id = output?.id as string;
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    // Kept inside the entry when tiny, named by the same keyed hash as a file.
    const bytes = output?.inline === undefined ? fs.readFileSync(path.join(store.dir(), 'artifacts', id.slice(0, 2), id)) : Buffer.from(output.inline, 'base64');
    const keyed = await keyedContentHashing('team-secret').create();
    keyed.update(bytes);
    expect(keyed.digest()).toBe(id);
    const plain = await plainContentHashing.create();
    plain.update(bytes);
    expect(plain.digest()).not.toBe(id);
    // without a secret, ids stay XXH3-128
    const other = createRunner({ dir: path.join(store.dir(), 'plain'), logger: collectingLogger() });
    store.keep(other);
    expect((await other.run(p)).steps.train_model?.outputs?.['output']?.id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('ignores code fingerprints kept without the secret, saying so, and keeps signed ones', async () => {
    // a fresh function each time, so that its fingerprint is not remembered in this process
    const pureOnce = () => {
      const double = step(function double_it({ x }: { x: number }) {
        return x * 2;
      });
      return pipeline('pure', (p) => ({ y: p.call(double, { x: 2 }) }));
    };
    const plain = createRunner({ dir: store.dir(), logger: collectingLogger() });
    store.keep(plain);
    await plain.run(pureOnce());
    await plain.close();
    expect(fs.existsSync(path.join(store.dir(), 'fingerprints.json'))).toBe(true);
    const { runner, logger } = teamRunner(new Keyv(), 'team-secret');
    await runner.run(pureOnce());
    expect(logger.warnings.filter((w) => w.includes('fingerprints.json') && w.includes('not signed'))).toHaveLength(1);
    await runner.close();
    const next = teamRunner(new Keyv(), 'team-secret');
    await next.runner.run(pureOnce());
    expect(next.logger.warnings).toEqual([]);
  });
});
