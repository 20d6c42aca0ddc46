/**
 * The `stepcache` command line: look at runs, look after the cache, draw a run's DAG.
 * `runCli` does everything but touch `process`, so it runs in-process in tests.
 *
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { StepcacheError, toError, type StepcacheErrorCode } from '../errors';
import { selectedForPruning, type CacheEntryInfo, type PruneOptions, type PruneReport } from '../cache/maintenance';
import { createRunner, type Runner } from '../runner/runner';
import type { Logger } from '../runner/logger';
import { createFileArtifactStore, type ArtifactStore } from '../store/artifact-store';
import { examineStore, type DoctorReport } from '../cache/doctor';
import { storeLayout, type StoreLayout } from '../store/layout';
import { createSqliteMetadataStore, type MetadataStore } from '../store/metadata-store';
import { openArtifactsLocation, openMetadataLocation, orThrow, parseArtifactsUrl, parseMetadataUrl, resolveStoreUrls } from '../store/urls';
import { pruneRuns, type RunPruneReport, type RunRetention } from '../store/run-retention';
import type { RunRecord, RunSummary, StepStatus } from '../store/records';
import { formatBytes, parseBytes, SIZE_FORM } from '../format/bytes';
import { DURATION_FORM, formatDuration, parseDuration } from '../format/duration';
import { paintStatus, stepDetail } from '../format/status';
import { escapeControls, oneLine } from '../format/text';
import { formatTimestamp, table } from './format';
import { schedulesCommand } from './schedules-command';
import { workerCommand } from './worker-command';

// model

/** Something text can be written to: `process.stdout`, or a test's collector. */
export interface TextSink {
  write(s: string): unknown;
}

/**
 * Where `runCli` writes, and what it would otherwise take from `process`.
 *
 * @example
 * const io: CliIo = { stdout: process.stdout, stderr: process.stderr, isTTY: process.stdout.isTTY };
 */
export interface CliIo {
  readonly stdout: TextSink;
  readonly stderr: TextSink;
  /** Whether stdout is a terminal: statuses are coloured then (unless `NO_COLOR` is set). @default false */
  readonly isTTY?: boolean;
  /** Relative paths are resolved against it. @default process.cwd() */
  readonly cwd?: string;
  /** Where `STEPCACHE_DIR` and `NO_COLOR` are read. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Stops a long-running command (`ui`) when aborted. @default never stops */
  readonly signal?: AbortSignal;
}

/**
 * Exit codes scripts can rely on.
 *
 * @example
 * if ((await runCli(['runs', 'show', id], io)) === EXIT_CODES.usage) console.error('no such run');
 */
const EXIT_CODES = Object.freeze({
  /** It worked. */
  ok: 0,
  /** An operation failed: the store could not be read or written, a file could not be written. */
  failed: 1,
  /** A usage error: unknown command or option, invalid option value, unknown or ambiguous run id. */
  usage: 2,
});

type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

/** An error meant for the user, with the exit code it ends the command with. */
class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

const USAGE_CODES: ReadonlySet<StepcacheErrorCode> = new Set(['INVALID_OPTIONS', 'UNKNOWN_RUN', 'UNKNOWN_STEP', 'UNKNOWN_OUTPUT']);

const EPILOGUE = `
Exit codes:
  0  success
  1  an operation failed (the store could not be read or written, a file could not be written)
  2  a usage error: unknown command or option, invalid option value, unknown or ambiguous run id

Environment:
  STEPCACHE_DIR            the store directory when --dir is not given (default: ./.stepcache)
  STEPCACHE_METADATA_URL   a team's metadata store when --metadata-url is not given:
                           postgres://user@host:5432/db?schema=name (password from the URL or PGPASSWORD)
  STEPCACHE_ARTIFACTS_URL  a team's artifact store when --artifacts-url is not given:
                           s3://bucket/prefix?endpoint=...&region=... (AWS credentials from the environment
                           or profile) or file:///shared/folder
  STEPCACHE_QUEUE_URL      the queue server of \`stepcache worker\` and \`stepcache schedules\` when --url is not given (redis://host:6379 or postgres://user:password@host:5432/database)
`;

// the store

interface Context {
  readonly io: CliIo;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

interface GlobalOptions {
  readonly dir?: string;
  readonly metadataUrl?: string;
  readonly artifactsUrl?: string;
  readonly verbose?: boolean;
}

const layoutOf = (ctx: Context, cmd: Command): StoreLayout => storeLayout(cmd.optsWithGlobals<GlobalOptions>().dir, ctx.env, ctx.cwd);

/** What the commands use of a runner and its metadata store, with failures to read or write them reported as such. */
type Store = Pick<Runner, 'getRun' | 'cache'> &
  Pick<MetadataStore, 'listRunSummaries' | 'findRunIds'> & {
    readonly pruneRuns: (retention: RunRetention) => Promise<RunPruneReport>;
    readonly examine: (repair: boolean) => Promise<DoctorReport>;
  };

const guardedStore = (runner: Runner, metadata: MetadataStore, artifacts: ArtifactStore, dir: string): Store => {
  const guard = <A>(what: string, f: () => Promise<A>): Promise<A> =>
    f().catch((e: unknown) => {
      throw e instanceof StepcacheError ? e : new CliError(EXIT_CODES.failed, `the store in ${dir} could not ${what}: ${toError(e).message}`, e);
    });
  return {
    getRun: (id) => guard('be read', () => runner.getRun(id)),
    listRunSummaries: (query) => guard('be read', () => metadata.listRunSummaries(query)),
    findRunIds: (prefix, limit) => guard('be read', () => metadata.findRunIds(prefix, limit)),
    pruneRuns: (retention) => guard('be pruned', () => pruneRuns(metadata, retention)),
    examine: (repair) => guard(repair ? 'be repaired' : 'be examined', () => examineStore(metadata, artifacts, { repair })),
    cache: {
      list: (filter) => guard('be read', () => runner.cache.list(filter)),
      prune: (options) => guard('be pruned', () => runner.cache.prune(options)),
      clear: () => guard('be cleared', () => runner.cache.clear()),
    },
  };
};

/** The URLs of a command's team stores: the options, else the environment (absent: the embedded store). */
const storeUrlsOf = (ctx: Context, cmd: Command) => {
  const options = cmd.optsWithGlobals<GlobalOptions>();
  return resolveStoreUrls({ metadataUrl: options.metadataUrl, artifactsUrl: options.artifactsUrl }, ctx.env, { metadata: '--metadata-url', artifacts: '--artifacts-url' });
};

/** How messages name a command's store: the metadata server's redacted URL, or the store directory. */
const storeLabelOf = (ctx: Context, cmd: Command): string => {
  const { metadata } = storeUrlsOf(ctx, cmd);
  return metadata === undefined ? layoutOf(ctx, cmd).dir : orThrow(parseMetadataUrl(metadata.url, metadata.source)).shown;
};

/**
 * Opens the store of a command (which must exist: commands never create one), and closes it
 * afterwards: a team's stores when their URLs are given (options or environment), else the
 * embedded store of the directory.
 */
const withStore = async <A>(ctx: Context, cmd: Command, f: (store: Store, dir: string, metadata: MetadataStore) => Promise<A>): Promise<A> => {
  const { dir, metadataFile, artifactsDir } = layoutOf(ctx, cmd);
  const urls = storeUrlsOf(ctx, cmd);
  const metadataLocation = urls.metadata === undefined ? undefined : orThrow(parseMetadataUrl(urls.metadata.url, urls.metadata.source));
  const artifactsLocation = urls.artifacts === undefined ? undefined : orThrow(parseArtifactsUrl(urls.artifacts.url, urls.artifacts.source));
  if (metadataLocation === undefined && !fs.existsSync(metadataFile)) {
    const why = fs.existsSync(dir) ? `${dir} has no metadata.sqlite` : `${dir} does not exist`;
    throw new CliError(EXIT_CODES.usage, `there is no stepcache store in ${dir} (${why}); pass --dir <path> or set STEPCACHE_DIR to the directory a runner uses.`);
  }
  const logger: Logger = { info: () => undefined, warn: (m) => void ctx.io.stderr.write(`stepcache: warning: ${printable(m)}\n`), error: (m) => void ctx.io.stderr.write(`stepcache: ${printable(m)}\n`) };
  const onDamaged = { onDamaged: (damage: { readonly message: string }) => logger.warn(`${damage.message}; it is left out.`) };
  const metadata: MetadataStore = metadataLocation === undefined ? createSqliteMetadataStore(metadataFile, onDamaged) : openMetadataLocation(metadataLocation, onDamaged);
  const artifacts = artifactsLocation === undefined ? { store: createFileArtifactStore(artifactsDir), close: () => undefined } : openArtifactsLocation(artifactsLocation);
  const runner = createRunner({ dir, logger, metadata, artifacts: artifacts.store });
  const where = metadataLocation?.shown ?? dir;
  try {
    return await f(guardedStore(runner, metadata, artifacts.store, where), where, metadata);
  } finally {
    await runner.close().catch(() => undefined);
    artifacts.close();
  }
};

/** The shortest prefix of a run id that is taken for one. */
const MIN_PREFIX = 4;

/**
 * A run by id; by a prefix of at least four characters that only one run has (as git takes
 * commits); or `latest`, `latest~1` (the one before), ... by start time.
 */
const resolveRun = async (store: Store, dir: string, id: string): Promise<RunRecord> => {
  if (id.trim() === '') throw new CliError(EXIT_CODES.usage, 'a run id must not be empty; see "stepcache runs list".');
  const relative = /^latest(?:~(\d+))?$/.exec(id);
  if (relative !== null) {
    const back = Number(relative[1] ?? 0);
    const recent = await store.listRunSummaries({ limit: back + 1 });
    const wanted = recent[back];
    if (wanted === undefined) {
      throw new CliError(EXIT_CODES.usage, recent.length === 0 ? `there is no run "${id}": the store in ${dir} has no runs yet.` : `there is no run "${id}": the store in ${dir} has ${plural(recent.length, 'run')}.`);
    }
    const run = await store.getRun(wanted.id);
    if (run !== undefined) return run;
    throw new CliError(EXIT_CODES.failed, `run ${wanted.id} ("${id}") is listed but its record cannot be read; see "stepcache doctor".`);
  }
  const exact = await store.getRun(id);
  if (exact !== undefined) return exact;
  const matches = id.length >= MIN_PREFIX ? await store.findRunIds(id, 6) : [];
  if (matches.length === 1) {
    const run = await store.getRun(matches[0] as string);
    if (run !== undefined) return run;
  }
  if (matches.length > 1) {
    const shown = matches.slice(0, 5);
    throw new CliError(EXIT_CODES.usage, `run id prefix "${id}" matches ${matches.length > 5 ? 'more than 5' : matches.length} runs (${shown.join(', ')}${matches.length > shown.length ? ', ...' : ''}); give more of the id.`);
  }
  const runs = await store.listRunSummaries({ limit: 5 });
  if (runs.length === 0) throw new CliError(EXIT_CODES.usage, `there is no run "${id}": the store in ${dir} has no runs yet.`);
  const tooShort = id.length < MIN_PREFIX ? ` (a prefix needs at least ${MIN_PREFIX} characters)` : '';
  const recent = runs.map((r) => `${r.id} (${r.pipeline}, ${r.status})`);
  throw new CliError(EXIT_CODES.usage, `there is no run "${id}" in ${dir}${tooShort}; the most recent runs are: ${recent.join(', ')}. See "stepcache runs list" for all of them.`);
};

// presentation

const painter = (ctx: Context) => {
  const colour = ctx.io.isTTY === true && ctx.env['NO_COLOR'] === undefined;
  return (status: StepStatus | RunRecord['status']): string => paintStatus(status, colour);
};

const runDuration = (run: Pick<RunSummary, 'durationMs' | 'status'>): string => (run.durationMs === undefined ? (run.status === 'running' ? '-' : '?') : formatDuration(run.durationMs));

/** How many runs `runs list` shows without --limit or --all. */
const DEFAULT_PAGE = 20;

/** Text from the store or the user (names, parameters, keys, messages), as it may reach a terminal. */
const printable = (text: string): string => escapeControls(text);

const json = (value: unknown): string => escapeControls(JSON.stringify(value, null, 2), 'json') + '\n';

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
const entriesWord = (n: number): string => plural(n, 'cache entry', 'cache entries');

const pruneSummary = (report: PruneReport, verb: string): string =>
  `${verb} ${entriesWord(report.entries)} and ${plural(report.artifacts, 'artifact')} (${formatBytes(report.bytes)}); ${formatBytes(report.remainingBytes)} of artifacts remain.\n`;

// option parsers (commander names the option when they throw)

const positiveInteger = (value: string): number => {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new InvalidArgumentError('Expected a whole number of 1 or more.');
  return Number(value);
};

const wholeNumber = (value: string): number => {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError('Expected a whole number (0 or more).');
  return Number(value);
};

/** How a command's run argument is described. */
const RUN_ID_HELP = 'a run id, a prefix of one (4 characters or more) that only one run has, or latest, latest~1, ...';

const duration = (value: string): number => {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError(`Expected ${DURATION_FORM}.`);
  return ms;
};

const bytes = (value: string): number => {
  const n = parseBytes(value);
  if (n === undefined) throw new InvalidArgumentError(`Expected ${SIZE_FORM}.`);
  return n;
};

const nonEmpty = (value: string): string => {
  if (value.trim() === '') throw new InvalidArgumentError('Expected a name.');
  return value;
};

// commands

const runsCommands = (ctx: Context, program: Command): void => {
  const out = (s: string) => void ctx.io.stdout.write(s);
  const paint = painter(ctx);
  const runs = program.command('runs').description('look at recorded runs');

  runs
    .command('list')
    .description(`list runs, most recent first (the last ${DEFAULT_PAGE} unless --limit or --all), with how many steps executed, were cached, failed or were skipped, and their parameters`)
    .option('--json', 'print JSON instead of a table')
    .option('--limit <n>', `show at most this many runs (default ${DEFAULT_PAGE})`, positiveInteger)
    .option('--all', 'show every run')
    .option('--pipeline <name>', 'only the runs of this pipeline', nonEmpty)
    .addOption(new Option('--status <status>', 'only the runs with this status').choices(['running', 'completed', 'failed', 'interrupted']))
    .action((options: { json?: boolean; limit?: number; all?: boolean; pipeline?: string; status?: RunRecord['status'] }, cmd: Command) =>
      withStore(ctx, cmd, async (store, dir) => {
        if (options.all === true && options.limit !== undefined) throw new CliError(EXIT_CODES.usage, 'options --all and --limit cannot be combined: --all shows every run.');
        const limit = options.all === true ? undefined : (options.limit ?? DEFAULT_PAGE);
        const filters = { ...(options.pipeline === undefined ? {} : { pipeline: options.pipeline }), ...(options.status === undefined ? {} : { status: options.status }) };
        // One more than shown, to say whether there are more.
        const page = await store.listRunSummaries({ ...filters, ...(limit === undefined ? {} : { limit: limit + 1 }) });
        const shown = limit === undefined ? page : page.slice(0, limit);
        if (options.json === true) {
          return out(json(shown.map((r) => ({ id: r.id, pipeline: r.pipeline, status: r.status, startedAt: r.startedAt, ...(r.endedAt === undefined ? {} : { endedAt: r.endedAt }), ...(r.durationMs === undefined ? {} : { durationMs: r.durationMs }), steps: r.steps, parameters: r.parameters }))));
        }
        if (shown.length === 0) return out(`No runs recorded in ${printable(dir)}${options.pipeline === undefined ? '' : ` of pipeline ${printable(options.pipeline)}`}${options.status === undefined ? '' : ` with status ${options.status}`}.\n`);
        const rows = shown.map((r) => [printable(r.id), printable(r.pipeline), paint(r.status), formatTimestamp(r.startedAt), runDuration(r), String(r.steps.executed), String(r.steps.cached), String(r.steps.failed), String(r.steps.skipped), printable(r.parameters)]);
        out(
          table(
            [{ header: 'ID' }, { header: 'PIPELINE' }, { header: 'STATUS' }, { header: 'STARTED' }, { header: 'DURATION', align: 'right' }, { header: 'EXECUTED', align: 'right' }, { header: 'CACHED', align: 'right' }, { header: 'FAILED', align: 'right' }, { header: 'SKIPPED', align: 'right' }, { header: 'PARAMETERS' }],
            rows,
          ),
        );
        if (page.length > shown.length) out(`(older runs not shown: --limit <n> or --all for more)\n`);
      }),
    );

  runs
    .command('prune')
    .description('delete run records: all but the most recent --keep-last, and those started longer ago than --older-than (running runs stay)')
    .addOption(new Option('--keep-last <n>', 'keep this many runs, the most recent').argParser(wholeNumber))
    .addOption(new Option('--older-than <duration>', `delete runs started longer ago than this: ${DURATION_FORM}`).argParser(duration))
    .option('--json', 'print the report as JSON')
    .action((options: { keepLast?: number; olderThan?: number; json?: boolean }, cmd: Command) =>
      withStore(ctx, cmd, async (store) => {
        if (options.keepLast === undefined && options.olderThan === undefined) {
          throw new CliError(EXIT_CODES.usage, 'runs prune needs --keep-last <n>, --older-than <duration>, or both; for example: stepcache runs prune --keep-last 1000 --older-than 90d');
        }
        const report = await store.pruneRuns({ ...(options.keepLast === undefined ? {} : { last: options.keepLast }), ...(options.olderThan === undefined ? {} : { olderThanMs: options.olderThan }) });
        out(options.json === true ? json(report) : `Deleted ${plural(report.runs.length, 'run')}.\n`);
      }),
    );

  runs
    .command('show')
    .description('show the steps of a run: status, duration and why each step executed, was cached, failed or was skipped')
    .argument('<id>', RUN_ID_HELP)
    .option('--json', 'print the run record as JSON')
    .action((id: string, options: { json?: boolean }, cmd: Command) =>
      withStore(ctx, cmd, async (store, dir) => {
        const run = await resolveRun(store, dir, id);
        if (options.json === true) return out(json(run));
        const params = printable(JSON.stringify(run.parameters));
        out(`Run ${printable(run.id)} of pipeline ${printable(run.pipeline)}: ${paint(run.status)}\n`);
        out(`Started ${formatTimestamp(run.startedAt)}, took ${runDuration(run)}${params === '{}' ? '' : `, parameters ${params}`}\n\n`);
        const steps = Object.values(run.steps);
        if (steps.length === 0) {
          const owner = run.owner === undefined ? '' : ` (pid ${run.owner.pid} on ${printable(run.owner.host)})`;
          if (run.status === 'interrupted') return out(`No steps recorded: its process${owner} stopped before the run ended.\n`);
          return out(run.status === 'running' ? `No steps recorded: the run has not finished${owner}.\n` : 'No steps recorded.\n');
        }
        out(table([{ header: 'STEP' }, { header: 'STATUS' }, { header: 'DURATION', align: 'right' }, { header: 'REASON' }], steps.map((s) => [printable(s.name), paint(s.status), formatDuration(s.durationMs), printable(oneLine(stepDetail(s, { fullIds: true })))])));
      }),
    );

  runs
    .command('compare')
    .description('compare two runs step by step: statuses, durations and the speed increase')
    .argument('<a>', `the first run: ${RUN_ID_HELP}`)
    .argument('<b>', `the second run: ${RUN_ID_HELP}`)
    .action((a: string, b: string, _options: unknown, cmd: Command) =>
      withStore(ctx, cmd, async (store, dir) => {
        const first = await resolveRun(store, dir, a);
        const second = await resolveRun(store, dir, b);
        const { compareRuns } = await loadRender();
        const text = compareRuns(first, second).text;
        out(printable(text.endsWith('\n') ? text : text + '\n'));
      }),
    );
};

const cacheCommands = (ctx: Context, program: Command): void => {
  const out = (s: string) => void ctx.io.stdout.write(s);
  const cache = program.command('cache').description('look after the cache: list, prune or clear entries');

  cache
    .command('ls')
    .alias('list')
    .description('list cache entries, most recently used first')
    .option('--step <name>', 'only the entries of this step', nonEmpty)
    .option('--pipeline <name>', 'only the entries of this pipeline', nonEmpty)
    .option('--json', 'print JSON instead of a table')
    .action((options: { step?: string; pipeline?: string; json?: boolean }, cmd: Command) =>
      withStore(ctx, cmd, async (store, dir) => {
        const entries = await store.cache.list({ ...(options.step === undefined ? {} : { step: options.step }), ...(options.pipeline === undefined ? {} : { pipeline: options.pipeline }) });
        if (options.json === true) return out(json(entries));
        if (entries.length === 0) return out(printable(`No cache entries${options.step === undefined ? '' : ` of step ${options.step}`}${options.pipeline === undefined ? '' : ` of pipeline ${options.pipeline}`} in ${dir}.\n`));
        out(entriesTable(entries));
        out(`${entriesWord(entries.length)}\n`);
      }),
    );

  cache
    .command('prune')
    .description('remove cache entries, and the artifacts no remaining entry refers to')
    .addHelpText(
      'after',
      `
Filters combine: --step x --older-than 7d removes the entries of step x not used for 7 days.
--max-bytes then removes least recently used entries until the rest fit.
Without options, only artifacts no entry refers to are removed.
Example: stepcache cache prune --older-than 30d --max-bytes 10GB`,
    )
    .addOption(new Option('--older-than <duration>', `only entries not used for this long: ${DURATION_FORM}`).argParser(duration))
    .option('--step <name>', 'only the entries of this step', nonEmpty)
    .option('--pipeline <name>', 'only the entries of this pipeline', nonEmpty)
    .addOption(new Option('--max-bytes <size>', `then remove least recently used entries until the remaining artifacts take at most this much: ${SIZE_FORM}`).argParser(bytes))
    .addOption(new Option('--grace <duration>', `keep artifacts no entry refers to when written less than this long ago (a run may be writing them; default 10m): ${DURATION_FORM}`).argParser(duration))
    .option('--dry-run', 'list the entries that would be removed, and remove nothing (not with --max-bytes)')
    .option('--json', 'print the report as JSON')
    .action((options: { olderThan?: number; step?: string; pipeline?: string; maxBytes?: number; grace?: number; dryRun?: boolean; json?: boolean }, cmd: Command) =>
      withStore(ctx, cmd, async (store) => {
        const prune: PruneOptions = {
          ...(options.olderThan === undefined ? {} : { olderThan: options.olderThan }),
          ...(options.step === undefined ? {} : { step: options.step }),
          ...(options.pipeline === undefined ? {} : { pipeline: options.pipeline }),
          ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
          ...(options.grace === undefined ? {} : { graceMs: options.grace }),
        };
        if (options.dryRun === true) {
          if (options.maxBytes !== undefined) {
            throw new CliError(EXIT_CODES.usage, 'option --dry-run cannot be combined with --max-bytes: which entries --max-bytes removes depends on artifacts the entries share, which a dry run cannot see. Use --dry-run with --older-than, --step and --pipeline.');
          }
          const doomed = await wouldPrune(store, prune);
          if (options.json === true) return out(json({ dryRun: true, entries: doomed }));
          if (doomed.length === 0) return out('Nothing to prune: no entry matches.\n');
          out(entriesTable(doomed));
          return out(`Would remove ${entriesWord(doomed.length)} (dry run: nothing was removed).\n`);
        }
        const report = await store.cache.prune(prune);
        if (options.json === true) return out(json(report));
        out(pruneSummary(report, 'Removed'));
        if (report.entries > 0 && report.artifacts === 0 && options.grace !== 0) {
          out(`Artifacts written less than ${options.grace === undefined ? '10m' : formatDuration(options.grace)} ago stay until a later prune (see --grace).\n`);
        }
      }),
    );

  cache
    .command('clear')
    .description('remove every cache entry and artifact (runs stay recorded); asks for --yes')
    .option('--yes', 'confirm: remove everything')
    .option('--json', 'print the report as JSON')
    .action(async (options: { yes?: boolean; json?: boolean }, cmd: Command) => {
      if (options.yes !== true) {
        throw new CliError(EXIT_CODES.usage, `cache clear removes every cache entry and artifact in ${storeLabelOf(ctx, cmd)}, so every step runs again next time; add --yes to confirm.`);
      }
      const report = await withStore(ctx, cmd, (store) => store.cache.clear());
      out(options.json === true ? json(report) : pruneSummary(report, 'Removed'));
    });
};

const entriesTable = (entries: readonly CacheEntryInfo[]): string => {
  const now = Date.now();
  return table(
    [{ header: 'STEP' }, { header: 'PIPELINE' }, { header: 'AGE', align: 'right' }, { header: 'SIZE', align: 'right' }, { header: 'LAST USED', align: 'right' }, { header: 'KEY' }],
    entries.map((e) => [printable(e.step), printable(e.pipeline), formatDuration(now - Date.parse(e.createdAt), 'age'), formatBytes(e.bytes), `${formatDuration(e.ageMs, 'age')} ago`, printable(e.key.slice(0, 12))]),
  );
};

/** The entries a prune with these filters would remove: the prune rule of `runner.cache.prune`, without `maxBytes`. */
const wouldPrune = async (store: Store, options: PruneOptions): Promise<CacheEntryInfo[]> => {
  const selected = selectedForPruning(options);
  return (await store.cache.list()).filter((e) => selected(e, e.ageMs));
};

const doctorCommand = (ctx: Context, program: Command): void => {
  const out = (s: string) => void ctx.io.stdout.write(s);
  program
    .command('doctor')
    .description('check the store: metadata rows that cannot be read, cache entries whose artifacts are missing or damaged (each artifact is read and its hash checked)')
    .option('--repair', 'drop the rows that cannot be read and the entries whose artifacts are missing or damaged (their steps execute again next time)')
    .option('--json', 'print the report as JSON')
    .action((options: { repair?: boolean; json?: boolean }, cmd: Command) =>
      withStore(ctx, cmd, async (store, dir) => {
        const report = await store.examine(options.repair === true);
        if (options.json === true) return out(json(report));
        for (const d of report.damaged) out(printable(`damaged row ${d.row}: ${oneLine(d.message)}\n`));
        for (const b of report.broken) out(printable(`broken cache entry ${b.key.slice(0, 12)} (${b.pipeline}/${b.step}): ${oneLine(b.problem)}\n`));
        const found = report.damaged.length + report.broken.length;
        if (found === 0) return out(printable(`The store in ${dir} is healthy: ${entriesWord(report.entriesChecked)} checked, every row readable.\n`));
        out(
          report.repaired
            ? `Repaired: dropped ${plural(report.damaged.length, 'damaged row')} and ${entriesWord(report.broken.length)} whose artifacts are missing or damaged.\n`
            : `Found ${plural(report.damaged.length, 'damaged row')} and ${entriesWord(report.broken.length)} whose artifacts are missing or damaged; run "stepcache doctor --repair" to drop them.\n`,
        );
      }),
    );
};

const dagCommand = (ctx: Context, program: Command): void => {
  const out = (s: string) => void ctx.io.stdout.write(s);
  program
    .command('dag')
    .description("draw a run's DAG: as a text tree, or into an SVG or a Mermaid file")
    .argument('<id>', RUN_ID_HELP)
    .option('--svg <file>', 'write the DAG as SVG to this file')
    .option('--mermaid <file>', 'write the DAG as a Mermaid flowchart to this file')
    .action((id: string, options: { svg?: string; mermaid?: string }, cmd: Command) =>
      withStore(ctx, cmd, async (store, dir) => {
        const run = await resolveRun(store, dir, id);
        const render = await loadRender();
        if (options.svg === undefined && options.mermaid === undefined) {
          const tree = render.runToTextTree(run);
          return out(printable(tree.endsWith('\n') ? tree : tree + '\n'));
        }
        const files: [string, () => Promise<string> | string][] = [];
        if (options.svg !== undefined) files.push([options.svg, () => render.runToSvg(run)]);
        if (options.mermaid !== undefined) files.push([options.mermaid, () => render.runToMermaid(run)]);
        for (const [file, contents] of files) {
          const target = path.resolve(ctx.cwd, file);
          const text = await contents();
          await fs.promises.writeFile(target, text).catch((e: unknown) => {
            throw new CliError(EXIT_CODES.failed, `could not write ${target}: ${toError(e).message}`, e);
          });
          out(`Wrote ${printable(target)}\n`);
        }
      }),
    );
};

const port = (value: string): number => {
  if (!/^\d+$/.test(value.trim()) || Number(value) > 65535) throw new InvalidArgumentError('Expected a port number from 0 (any free port) to 65535.');
  return Number(value);
};

const uiCommand = (ctx: Context, program: Command): void => {
  program
    .command('ui')
    .description('serve a read-only web page of the runs in the store: runs, DAGs, comparisons, steps over time')
    .addOption(new Option('--port <n>', 'the port to listen on (0: any free port)').argParser(port).default(7350))
    .option('--host <address>', 'the address to listen on; another than 127.0.0.1 lets other machines read the store', '127.0.0.1')
    .option('--open', 'open the page in the default browser')
    .action((options: { port: number; host: string; open?: boolean }, cmd: Command) =>
      withStore(ctx, cmd, async (_store, dir, metadata) => {
        const { createDashboard } = await import('../ui');
        const artifacts = createFileArtifactStore(layoutOf(ctx, cmd).artifactsDir);
        const server = await createDashboard({ metadata, artifacts })
          .listen(options.port, options.host)
          .catch((e: unknown) => {
            throw new CliError(EXIT_CODES.failed, `could not listen on ${options.host}:${options.port}: ${toError(e).message}`, e);
          });
        ctx.io.stdout.write(`Serving the runs of ${dir} at ${server.url} (read-only; Ctrl-C stops it)\n`);
        if (options.open === true) openInBrowser(server.url);
        await new Promise<void>((resolve) => {
          if (ctx.io.signal === undefined) return;
          if (ctx.io.signal.aborted) return resolve();
          ctx.io.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        await server.close();
      }),
    );
};

/** Opens a URL with the desktop's opener; a machine without one just has the printed address. */
const openInBrowser = (url: string): void => {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(opener, [url], { detached: true, stdio: 'ignore' });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // no opener: the address is printed
  }
};

/** The renderers, loaded only by the commands that draw. */
const loadRender = () => import('../render');

// the program

/** The version of the package, from its package.json (two folders up, from the sources and from the build alike). */
const packageVersion = (): string => {
  try {
    const manifest: unknown = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
    return typeof manifest === 'object' && manifest !== null && 'version' in manifest && typeof manifest.version === 'string' ? manifest.version : 'unknown';
  } catch {
    return 'unknown';
  }
};

const buildProgram = (ctx: Context): Command => {
  const program = new Command('stepcache')
    .description('Look at stepcache runs, look after the cache, draw a run\'s DAG.')
    .option('--dir <path>', 'the store directory (default: $STEPCACHE_DIR, or ./.stepcache), relative to the current directory')
    .option('--metadata-url <url>', "a team's metadata store, postgres://user@host:5432/db?schema=name (default: $STEPCACHE_METADATA_URL)")
    .option('--artifacts-url <url>', "a team's artifact store, s3://bucket/prefix?... or file:///folder (default: $STEPCACHE_ARTIFACTS_URL)")
    .option('--verbose', 'print stack traces with errors')
    .version(packageVersion(), '-V, --version', 'print the version of stepcache')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void ctx.io.stdout.write(s),
      writeErr: (s) => void ctx.io.stderr.write(s),
      outputError: (s, write) => write(`stepcache: ${printable(oneLine(s.replace(/^error: /, '')))}\n`),
      getOutHelpWidth: () => 100,
      getErrHelpWidth: () => 100,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('afterAll', EPILOGUE)
    .showSuggestionAfterError(true);
  runsCommands(ctx, program);
  cacheCommands(ctx, program);
  dagCommand(ctx, program);
  doctorCommand(ctx, program);
  uiCommand(ctx, program);
  workerCommand(program, { cwd: ctx.cwd, env: ctx.env, stdout: ctx.io.stdout, stderr: ctx.io.stderr });
  schedulesCommand(program, { env: ctx.env, stdout: ctx.io.stdout });
  return program;
};

const stackOf = (e: unknown): string | undefined => (typeof e === 'object' && e !== null && 'stack' in e && typeof e.stack === 'string' ? e.stack : undefined);

const causeOf = (e: unknown): unknown => (typeof e === 'object' && e !== null && 'cause' in e ? e.cause : undefined);

const describeError = (e: unknown, verbose: boolean): string => {
  const message = toError(e).message;
  if (!verbose) return `stepcache: ${printable(oneLine(message))}\n`;
  let text = `stepcache: ${message}\n${stackOf(e) ?? ''}\n`;
  for (let cause = causeOf(e), depth = 0; cause !== undefined && depth < 5; cause = causeOf(cause), depth++) {
    text += `Caused by: ${stackOf(cause) ?? toError(cause).message}\n`;
  }
  return printable(text);
};

const exitCodeOf = (e: unknown): ExitCode => {
  if (e instanceof CliError) return e.exitCode;
  if (e instanceof StepcacheError) return USAGE_CODES.has(e.code) ? EXIT_CODES.usage : EXIT_CODES.failed;
  return EXIT_CODES.failed;
};

/**
 * Runs the command line on arguments (without `node` and the script) and resolves to the exit code:
 * 0 success, 1 an operation failed, 2 a usage error or an unknown run id. Errors are one line
 * `stepcache: <message>` on stderr; `--verbose` adds the stack.
 *
 * @example
 * const code = await runCli(['runs', 'list', '--dir', '/tmp/store'], { stdout: process.stdout, stderr: process.stderr });
 */
export const runCli = async (argv: readonly string[], io: CliIo): Promise<number> => {
  const ctx: Context = { io, cwd: io.cwd ?? process.cwd(), env: io.env ?? process.env };
  const program = buildProgram(ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_CODES.ok;
  } catch (e) {
    // Commander has printed its own message (help, or a usage error) already.
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
    io.stderr.write(describeError(e, argv.includes('--verbose')));
    return exitCodeOf(e);
  }
};
