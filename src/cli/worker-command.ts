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

/** The metadata store of `--metadata`: PostgreSQL (loaded only then) for a URL, else an SQLite file. */
const metadataStore = async (flags: WorkerFlags, metadataFile: string, logger: Logger): Promise<MetadataStore> => {
  const onDamaged = (damage: { readonly message: string }) => logger.warn(damage.message);
  if (flags.metadata !== undefined && /^postgres(ql)?:\/\//.test(flags.metadata)) {
    const { createPostgresMetadataStore } = await import('../store/postgres-metadata-store');
    return createPostgresMetadataStore({ url: flags.metadata, onDamaged });
  }
  return createSqliteMetadataStore(flags.metadata ?? metadataFile, { onDamaged });
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
    .option('--metadata <url-or-file>', 'the team metadata store: a postgres:// URL or an SQLite file (default: the store directory\'s)')
    .option('--artifacts <dir>', 'the team artifact folder (default: the store directory\'s)')
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
      if (flags.metadata === undefined) fs.mkdirSync(layout.dir, { recursive: true });
      const metadata = await metadataStore(flags, layout.metadataFile, logger);
      const stopped = ctx.stopped ?? signalled();
      try {
        const worker = await createWorker({
          module: flags.module.startsWith('.') ? path.resolve(ctx.cwd, flags.module) : flags.module,
          queue: flags.queue,
          concurrency: flags.concurrency,
          url,
          metadata,
          artifacts: createFileArtifactStore(flags.artifacts === undefined ? layout.artifactsDir : path.resolve(ctx.cwd, flags.artifacts)),
          logger,
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
