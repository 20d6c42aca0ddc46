/**
 * The team store in the benchmark: a fully cached {@link TEAM_STEPS}-step pipeline against a
 * local PostgreSQL server (metadata) and an S3-compatible server (s3rver, artifacts), both named by
 * URL as a team configures them, side by side with the same pipeline on the embedded store.
 * Goal: at most {@link TEAM_RATIO_GOAL}x the embedded store and under {@link TEAM_RUN_GOAL_MS} ms.
 *
 * Runnable alone: `node --expose-gc --import tsx bench/team-store.ts`.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRunner, pipeline, silentLogger, step, type Handle, type Runner } from '../src/index';
import { testPostgres } from '../test/support/provision/postgres';
import { provideS3Server } from '../test/support/provision/s3';
import { formatMs, interleave, median, renderTable, timeAsync, type Paired, type Row } from './measure';

/** Steps of the measured pipeline. */
export const TEAM_STEPS = 20;
/** The goal: a cached run on the team store takes at most this multiple of the embedded store's. */
export const TEAM_RATIO_GOAL = 2;
/** The goal: a cached run on the team store takes less than this. */
export const TEAM_RUN_GOAL_MS = 30;

/**
 * One step of the chain: the previous output plus a parameter, as an array of numbers (an artifact).
 *
 * @example
 * grow({ prev: [1], k: 2 }); // [1, 2]
 */
export function grow({ prev, k }: { prev: number[]; k: number }): number[] {
  return [...prev, k];
}

const steps = Array.from({ length: TEAM_STEPS }, (_, i) => step(grow).named(`t${i}`));
const teamPipeline = pipeline('bench_team', (p) => {
  let prev: Handle<number[]> | number[] = [];
  steps.forEach((s, i) => {
    prev = p.call(s, { prev, k: i });
  });
  return { last: prev as unknown as Handle<number[]> };
});

const cachedRun = async (runner: Runner): Promise<number> => {
  let cached = 0;
  const ms = await timeAsync(async () => {
    const run = await runner.run(teamPipeline);
    cached = Object.values(run.steps).filter((s) => s.status === 'cached').length;
  });
  if (cached !== TEAM_STEPS) throw new Error(`a run that should be fully cached served ${cached} of ${TEAM_STEPS} steps from the cache`);
  return ms;
};

/** What the team-store measure found. */
export interface TeamStoreResult {
  /** `a`: cached runs on PostgreSQL + S3; `b`: on the embedded store (milliseconds per run). */
  readonly paired: Paired;
  /** The first cached run of a new team runner (new connections, nothing known of the bucket yet), milliseconds. */
  readonly firstRunMs: number[];
}

/**
 * Measures cached runs on the team store and on the embedded store, `reps` times side by side.
 *
 * @example
 * const { paired } = await measureTeamStore(11);
 */
export const measureTeamStore = async (reps: number): Promise<TeamStoreResult> => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-bench-team-'));
  const [postgres, s3] = await Promise.all([testPostgres(), provideS3Server()]);
  const credentials = s3.clientConfig.credentials as { accessKeyId: string; secretAccessKey: string } | undefined;
  // Credentials from the environment, where a team member's come from.
  if (credentials !== undefined) Object.assign(process.env, { AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey });
  const metadataUrl = new URL(postgres.url);
  metadataUrl.searchParams.set('schema', `bench_${process.pid}`);
  const teamRunner = (): Runner =>
    createRunner({
      dir: path.join(root, 'team'),
      logger: silentLogger,
      metadataUrl: metadataUrl.toString(),
      artifactsUrl: `s3://${s3.bucket}/bench-${process.pid}?endpoint=${s3.endpoint}&region=us-east-1&forcePathStyle=true&checksums=when-required`,
    });
  const team = teamRunner();
  const embedded = createRunner({ dir: path.join(root, 'embedded'), logger: silentLogger });
  try {
    await team.run(teamPipeline);
    await embedded.run(teamPipeline);
    // Warm both (connections, prepared code paths) before measuring.
    for (let i = 0; i < 3; i++) {
      await cachedRun(team);
      await cachedRun(embedded);
    }
    const paired = await interleave(reps, true, () => cachedRun(team), () => cachedRun(embedded));
    const firstRunMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const fresh = teamRunner();
      try {
        firstRunMs.push(await cachedRun(fresh));
      } finally {
        await fresh.close();
      }
    }
    return { paired, firstRunMs };
  } finally {
    await team.close();
    await embedded.close();
    await Promise.all([postgres.dispose(), s3.stop()]);
    fs.rmSync(root, { recursive: true, force: true });
  }
};

/**
 * The report line: the team store's median against the embedded store's, with both goals.
 *
 * @example
 * console.log(renderTable([teamStoreRow(await measureTeamStore(11))]));
 */
export const teamStoreRow = (result: TeamStoreResult): Row => {
  const team = median(result.paired.a);
  const embedded = median(result.paired.b);
  return {
    measure: `cached ${TEAM_STEPS}-step run, PostgreSQL + S3 (vs embedded)`,
    stepcache: formatMs(team),
    baseline: formatMs(embedded),
    ratio: team / embedded,
    goal: `<= ${TEAM_RATIO_GOAL}x and < ${TEAM_RUN_GOAL_MS} ms`,
    pass: team / embedded <= TEAM_RATIO_GOAL && team < TEAM_RUN_GOAL_MS,
  };
};

if (require.main === module) {
  measureTeamStore(Math.min(11, Math.max(7, Number(process.env['BENCH_REPS'] ?? 11) || 11)))
    .then((result) => {
      console.log(renderTable([teamStoreRow(result)]));
      console.log(`first cached run of a new team runner: ${formatMs(median(result.firstRunMs))} (median of ${result.firstRunMs.length})`);
    })
    .catch((e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    });
}
