import Keyv from 'keyv';
import { createRunner, pipeline, step, type Runner } from '../src';
import { collectingLogger, removeDir, tempDir } from './support/fixtures';

let dir: string;
const runners: Runner[] = [];
beforeEach(() => {
  dir = tempDir();
});
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.close()));
  removeDir(dir);
});

let executions = 0;
const train = step(function train_model({ lr }: { lr: number }) {
  executions++;
  return { weights: [lr * 2, lr * 3] };
});
const p = pipeline('team', (p) => ({ model: p.call(train, { lr: 0.1 }) }));

const teamRunner = (keyv: Keyv, secret: string | undefined) => {
  const logger = collectingLogger();
  const runner = createRunner({ dir, metadata: keyv, logger, ...(secret === undefined ? {} : { secret }) });
  runners.push(runner);
  return { runner, logger };
};

beforeEach(() => {
  executions = 0;
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
    expect(logger.warnings.some((w) => w.includes('train_model') && w.includes('signature does not verify'))).toBe(true);
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
    }
    const { runner, logger } = teamRunner(keyv, 'team-secret');
    const run = await runner.run(p);
    expect(run.steps.train_model?.status).toBe('executed');
    expect(logger.warnings.length).toBeGreaterThan(0);
    expect(await run.output('model')).toEqual({ weights: [0.2, 0.30000000000000004] });
  });
});
