/**
 * `stepcache worker`: a process that executes the steps clients send to the queue, until SIGTERM
 * or SIGINT (then the jobs in hand finish first).
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { createWorker } from '../distributed/worker';
import { StepcacheError } from '../errors';
import { QUEUE_URL_VARIABLE } from '../distributed/connection';
import { DEFAULT_QUEUE_NAME } from '../distributed/job';
import type { Logger } from '../runner/logger';
import { createFileArtifactStore } from '../store/artifact-store';
import { storeLayout } from '../store/layout';
import { createSqliteMetadataStore, type MetadataStore } from '../store/metadata-store';
import type { ArtifactStore } from '../store/artifact-store';
import { openArtifactsLocation, openMetadataLocation, orThrow, parseArtifactsUrl, parseMetadataUrl, STORE_URL_VARIABLES } from '../store/urls';

// model

/**
 * What the worker command needs of the command line's context.
 *
 * @example
 * workerCommand(program, { cwd: process.cwd(), env: process.env, stdout: process.stdout, stderr: process.stderr });
 */
export interface WorkerCommandContext {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
  /** Resolves when the worker should stop. @default the first SIGTERM or SIGINT */
  readonly stopped?: Promise<void>;
}

interface WorkerFlags {
  readonly module: string;
  readonly queue: string;
  readonly concurrency: number;
  readonly url?: string;
  readonly metadata?: string;
  readonly artifacts?: string;
}

// utils

const wholeNumber = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1.');
  return n;
};

const signalled = (): Promise<void> =>
  new Promise((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

/** The metadata store of `--metadata` (else `STEPCACHE_METADATA_URL`): PostgreSQL for a URL, else an SQLite file (the store directory's by default). */
const metadataStore = (flags: WorkerFlags, metadataFile: string, env: WorkerCommandContext['env'], logger: Logger): MetadataStore => {
  const onDamaged = (damage: { readonly message: string }) => logger.warn(damage.message);
  const fromEnv = env[STORE_URL_VARIABLES.metadata];
  const given = flags.metadata ?? (fromEnv === undefined || fromEnv.trim() === '' ? undefined : fromEnv);
  if (given !== undefined && /^postgres(ql)?:\/\//.test(given)) {
    return openMetadataLocation(orThrow(parseMetadataUrl(given, flags.metadata === undefined ? STORE_URL_VARIABLES.metadata : '--metadata')), { onDamaged });
  }
  return createSqliteMetadataStore(given ?? metadataFile, { onDamaged });
};

/** The artifact store of `--artifacts` (a folder), else of `STEPCACHE_ARTIFACTS_URL` (a folder or a bucket), else the store directory's folder. */
const artifactStore = (flags: WorkerFlags, artifactsDir: string, ctx: WorkerCommandContext): ArtifactStore => {
  if (flags.artifacts !== undefined) return createFileArtifactStore(path.resolve(ctx.cwd, flags.artifacts));
  const fromEnv = ctx.env[STORE_URL_VARIABLES.artifacts];
  if (fromEnv === undefined || fromEnv.trim() === '') return createFileArtifactStore(artifactsDir);
  return openArtifactsLocation(orThrow(parseArtifactsUrl(fromEnv, STORE_URL_VARIABLES.artifacts))).store;
};

// the command

/**
 * Adds `worker` to the program: `stepcache worker --module <file-or-package> [--queue name]
 * [--concurrency n] [--url redis://…|postgres://…] [--metadata postgres://…|file] [--artifacts dir]`. The
 * stores default to the store directory (`--dir`), which must then be a folder every worker and
 * client sees.
 *
 * @example
 * workerCommand(program, { cwd: process.cwd(), env: process.env, stdout: process.stdout, stderr: process.stderr });
 */
export const workerCommand = (program: Command, ctx: WorkerCommandContext): void => {
  program
    .command('worker')
    .description('execute the steps that clients send to the queue, until SIGTERM')
    .requiredOption('--module <file-or-package>', 'the pipeline module whose exported pipelines this worker executes')
    .option('--queue <name>', 'the queue to take jobs from', DEFAULT_QUEUE_NAME)
    .option('--concurrency <n>', 'how many steps to execute at once', wholeNumber, 1)
    .option('--url <queue-url>', `the queue server, redis://host:6379 or postgres://user:password@host:5432/database (default: $${QUEUE_URL_VARIABLE})`)
    .option('--metadata <url-or-file>', `the team metadata store: a postgres:// URL or an SQLite file (default: $${STORE_URL_VARIABLES.metadata}, else the store directory's)`)
    .option('--artifacts <dir>', `the team artifact folder (default: $${STORE_URL_VARIABLES.artifacts}, a folder or a bucket, else the store directory's)`)
    .action(async (flags: WorkerFlags, cmd: Command) => {
      const layout = storeLayout(cmd.optsWithGlobals<{ dir?: string }>().dir, ctx.env, ctx.cwd);
      const logger: Logger = {
        info: (m) => void ctx.stdout.write(`${m}\n`),
        warn: (m) => void ctx.stderr.write(`stepcache: warning: ${m}\n`),
        error: (m) => void ctx.stderr.write(`stepcache: ${m}\n`),
      };
      const url = flags.url ?? ctx.env[QUEUE_URL_VARIABLE];
      if (url === undefined || url === '') {
        throw new StepcacheError('INVALID_OPTIONS', `stepcache worker needs the queue server: pass --url redis://host:6379 (or postgres://user:password@host:5432/database), or set ${QUEUE_URL_VARIABLE}.`, { field: 'url' });
      }
      fs.mkdirSync(layout.dir, { recursive: true });
      const metadata = metadataStore(flags, layout.metadataFile, ctx.env, logger);
      const stopped = ctx.stopped ?? signalled();
      try {
        const worker = await createWorker({
          module: flags.module.startsWith('.') ? path.resolve(ctx.cwd, flags.module) : flags.module,
          queue: flags.queue,
          concurrency: flags.concurrency,
          url,
          metadata,
          artifacts: artifactStore(flags, layout.artifactsDir, ctx),
          logger,
          dir: layout.dir,
          ...workerTimings(ctx.env),
        });
        logger.info(`Worker ${worker.name} is taking jobs from queue ${flags.queue}.`);
        await stopped;
        logger.info(`Worker ${worker.name} is stopping: finishing the jobs in hand.`);
        await worker.close();
      } finally {
        await metadata.close();
      }
    });
};

/** Lock and stall intervals from the environment (tests shorten them so that a dead worker's job moves on quickly). */
const workerTimings = (env: Readonly<Record<string, string | undefined>>) => {
  const ms = (name: string): number | undefined => {
    const value = Number(env[name]);
    return env[name] === undefined || !Number.isFinite(value) || value <= 0 ? undefined : value;
  };
  const lockDurationMs = ms('STEPCACHE_WORKER_LOCK_MS');
  const stalledIntervalMs = ms('STEPCACHE_WORKER_STALLED_INTERVAL_MS');
  return { ...(lockDurationMs === undefined ? {} : { lockDurationMs }), ...(stalledIntervalMs === undefined ? {} : { stalledIntervalMs }) };
};
