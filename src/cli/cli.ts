/**
 * The `stepcache` command line: look at runs, look after the cache, draw a run's DAG.
 * `runCli` does everything but touch `process`, so it runs in-process in tests.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { StepcacheError, toError, type StepcacheErrorCode } from '../errors';
import { selectedForPruning, type CacheEntryInfo, type PruneOptions, type PruneReport } from '../cache/maintenance';
import { createRunner, type Runner } from '../runner/runner';
import type { Logger } from '../runner/logger';
import { createFileArtifactStore } from '../store/artifact-store';
import { storeLayout, type StoreLayout } from '../store/layout';
import { createSqliteMetadataStore } from '../store/metadata-store';
import type { RunRecord, StepStatus } from '../store/records';
import { formatBytes, parseBytes, SIZE_FORM } from '../format/bytes';
import { DURATION_FORM, formatDuration, parseDuration } from '../format/duration';
import { paintStatus, stepDetail } from '../format/status';
import { oneLine } from '../format/text';
import { formatTimestamp, table } from './format';
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
  STEPCACHE_DIR  the store directory when --dir is not given (default: ./.stepcache)
  STEPCACHE_QUEUE_URL  the queue server of \`stepcache worker\` when --url is not given (redis://host:6379)
`;

// the store

interface Context {
  readonly io: CliIo;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

interface GlobalOptions {
  readonly dir?: string;
  readonly verbose?: boolean;
}

const layoutOf = (ctx: Context, cmd: Command): StoreLayout => storeLayout(cmd.optsWithGlobals<GlobalOptions>().dir, ctx.env, ctx.cwd);

/** What the commands use of a runner: its store, with failures to read or write it reported as such. */
type Store = Pick<Runner, 'getRun' | 'listRuns' | 'cache'>;

const guardedStore = (runner: Runner, dir: string): Store => {
  const guard = <A>(what: string, f: () => Promise<A>): Promise<A> =>
    f().catch((e: unknown) => {
      throw e instanceof StepcacheError ? e : new CliError(EXIT_CODES.failed, `the store in ${dir} could not ${what}: ${toError(e).message}`, e);
    });
  return {
    getRun: (id) => guard('be read', () => runner.getRun(id)),
    listRuns: () => guard('be read', () => runner.listRuns()),
    cache: {
      list: (filter) => guard('be read', () => runner.cache.list(filter)),
      prune: (options) => guard('be pruned', () => runner.cache.prune(options)),
      clear: () => guard('be cleared', () => runner.cache.clear()),
    },
  };
};

/** Opens the store of a command (which must exist: commands never create one), and closes it afterwards. */
const withStore = async <A>(ctx: Context, cmd: Command, f: (store: Store, dir: string) => Promise<A>): Promise<A> => {
  const { dir, metadataFile, artifactsDir } = layoutOf(ctx, cmd);
  if (!fs.existsSync(metadataFile)) {
    const why = fs.existsSync(dir) ? `${dir} has no metadata.sqlite` : `${dir} does not exist`;
    throw new CliError(EXIT_CODES.usage, `there is no stepcache store in ${dir} (${why}); pass --dir <path> or set STEPCACHE_DIR to the directory a runner uses.`);
  }
  const logger: Logger = { info: () => undefined, warn: (m) => void ctx.io.stderr.write(`stepcache: warning: ${m}\n`), error: (m) => void ctx.io.stderr.write(`stepcache: ${m}\n`) };
  const metadata = createSqliteMetadataStore(metadataFile, { onDamaged: (damage) => logger.warn(`${damage.message}; it is left out.`) });
  const runner = createRunner({ dir, logger, metadata, artifacts: createFileArtifactStore(artifactsDir) });
  try {
    return await f(guardedStore(runner, dir), dir);
  } finally {
    await runner.close().catch(() => undefined);
  }
};

/** A run by id, or by an id prefix that only one run has. */
const resolveRun = async (store: Store, dir: string, id: string): Promise<RunRecord> => {
  if (id.trim() === '') throw new CliError(EXIT_CODES.usage, 'a run id must not be empty; see "stepcache runs list".');
  const exact = await store.getRun(id);
  if (exact !== undefined) return exact;
  const runs = await store.listRuns();
  const matches = runs.filter((r) => r.id.startsWith(id));
  if (matches.length === 1) return matches[0] as RunRecord;
  if (matches.length > 1) {
    const shown = matches.slice(0, 5).map((r) => r.id);
    throw new CliError(EXIT_CODES.usage, `run id prefix "${id}" matches ${matches.length} runs (${shown.join(', ')}${matches.length > shown.length ? ', ...' : ''}); give more of the id.`);
  }
  if (runs.length === 0) throw new CliError(EXIT_CODES.usage, `there is no run "${id}": the store in ${dir} has no runs yet.`);
  const recent = runs.slice(0, 5).map((r) => `${r.id} (${r.pipeline}, ${r.status})`);
  throw new CliError(EXIT_CODES.usage, `there is no run "${id}" in ${dir}; the most recent runs are: ${recent.join(', ')}. See "stepcache runs list" for all of them.`);
};

// presentation

const painter = (ctx: Context) => {
  const colour = ctx.io.isTTY === true && ctx.env['NO_COLOR'] === undefined;
  return (status: StepStatus | RunRecord['status']): string => paintStatus(status, colour);
};

const countSteps = (run: RunRecord): Record<StepStatus, number> => {
  const counts: Record<StepStatus, number> = { executed: 0, cached: 0, failed: 0, skipped: 0 };
  for (const s of Object.values(run.steps)) counts[s.status]++;
  return counts;
};

const runDuration = (run: RunRecord): string => (run.durationMs === undefined ? (run.status === 'running' ? '-' : '?') : formatDuration(run.durationMs));

const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n';

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
const entriesWord = (n: number): string => plural(n, 'cache entry', 'cache entries');

const pruneSummary = (report: PruneReport, verb: string): string =>
  `${verb} ${entriesWord(report.entries)} and ${plural(report.artifacts, 'artifact')} (${formatBytes(report.bytes)}); ${formatBytes(report.remainingBytes)} of artifacts remain.\n`;

// option parsers (commander names the option when they throw)

const positiveInteger = (value: string): number => {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new InvalidArgumentError('Expected a whole number of 1 or more.');
  return Number(value);
};

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
    .description('list runs, most recent first, with how many steps executed, were cached, failed or were skipped')
    .option('--json', 'print JSON instead of a table')
    .option('--limit <n>', 'show at most this many runs', positiveInteger)
    .action((options: { json?: boolean; limit?: number }, cmd: Command) =>
      withStore(ctx, cmd, async (store, dir) => {
        const all = await store.listRuns();
        const shown = options.limit === undefined ? all : all.slice(0, options.limit);
        if (options.json === true) {
          return out(json(shown.map((r) => ({ id: r.id, pipeline: r.pipeline, status: r.status, startedAt: r.startedAt, ...(r.endedAt === undefined ? {} : { endedAt: r.endedAt }), ...(r.durationMs === undefined ? {} : { durationMs: r.durationMs }), steps: countSteps(r) }))));
        }
        if (shown.length === 0) return out(`No runs recorded in ${dir}.\n`);
        const rows = shown.map((r) => {
          const c = countSteps(r);
          return [r.id, r.pipeline, paint(r.status), formatTimestamp(r.startedAt), runDuration(r), String(c.executed), String(c.cached), String(c.failed), String(c.skipped)];
        });
        out(
          table(
            [{ header: 'ID' }, { header: 'PIPELINE' }, { header: 'STATUS' }, { header: 'STARTED' }, { header: 'DURATION', align: 'right' }, { header: 'EXECUTED', align: 'right' }, { header: 'CACHED', align: 'right' }, { header: 'FAILED', align: 'right' }, { header: 'SKIPPED', align: 'right' }],
            rows,
          ),
        );
        if (shown.length < all.length) out(`(${all.length - shown.length} older ${all.length - shown.length === 1 ? 'run' : 'runs'} not shown)\n`);
      }),
    );

  runs
    .command('show')
    .description('show the steps of a run: status, duration and why each step executed, was cached, failed or was skipped')
    .argument('<id>', 'a run id, or a prefix of one that only one run has')
    .option('--json', 'print the run record as JSON')
    .action((id: string, options: { json?: boolean }, cmd: Command) =>
      withStore(ctx, cmd, async (store, dir) => {
        const run = await resolveRun(store, dir, id);
        if (options.json === true) return out(json(run));
        const params = JSON.stringify(run.parameters);
        out(`Run ${run.id} of pipeline ${run.pipeline}: ${paint(run.status)}\n`);
        out(`Started ${formatTimestamp(run.startedAt)}, took ${runDuration(run)}${params === '{}' ? '' : `, parameters ${params}`}\n\n`);
        const steps = Object.values(run.steps);
        if (steps.length === 0) return out(run.status === 'running' ? 'No steps recorded: the run has not finished (or its process stopped before it could record them).\n' : 'No steps recorded.\n');
        out(table([{ header: 'STEP' }, { header: 'STATUS' }, { header: 'DURATION', align: 'right' }, { header: 'REASON' }], steps.map((s) => [s.name, paint(s.status), formatDuration(s.durationMs), oneLine(stepDetail(s, { fullIds: true }))])));
      }),
    );

  runs
    .command('compare')
    .description('compare two runs step by step: statuses, durations and the speed increase')
    .argument('<a>', 'the first run id (or unique prefix)')
    .argument('<b>', 'the second run id (or unique prefix)')
    .action((a: string, b: string, _options: unknown, cmd: Command) =>
      withStore(ctx, cmd, async (store, dir) => {
        const first = await resolveRun(store, dir, a);
        const second = await resolveRun(store, dir, b);
        const { compareRuns } = await loadRender();
        const text = compareRuns(first, second).text;
        out(text.endsWith('\n') ? text : text + '\n');
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
        if (entries.length === 0) return out(`No cache entries${options.step === undefined ? '' : ` of step ${options.step}`}${options.pipeline === undefined ? '' : ` of pipeline ${options.pipeline}`} in ${dir}.\n`);
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
        throw new CliError(EXIT_CODES.usage, `cache clear removes every cache entry and artifact in ${layoutOf(ctx, cmd).dir}, so every step runs again next time; add --yes to confirm.`);
      }
      const report = await withStore(ctx, cmd, (store) => store.cache.clear());
      out(options.json === true ? json(report) : pruneSummary(report, 'Removed'));
    });
};

const entriesTable = (entries: readonly CacheEntryInfo[]): string => {
  const now = Date.now();
  return table(
    [{ header: 'STEP' }, { header: 'PIPELINE' }, { header: 'AGE', align: 'right' }, { header: 'SIZE', align: 'right' }, { header: 'LAST USED', align: 'right' }, { header: 'KEY' }],
    entries.map((e) => [e.step, e.pipeline, formatDuration(now - Date.parse(e.createdAt), 'age'), formatBytes(e.bytes), `${formatDuration(e.ageMs, 'age')} ago`, e.key.slice(0, 12)]),
  );
};

/** The entries a prune with these filters would remove: the prune rule of `runner.cache.prune`, without `maxBytes`. */
const wouldPrune = async (store: Store, options: PruneOptions): Promise<CacheEntryInfo[]> => {
  const selected = selectedForPruning(options);
  return (await store.cache.list()).filter((e) => selected(e, e.ageMs));
};

const dagCommand = (ctx: Context, program: Command): void => {
  const out = (s: string) => void ctx.io.stdout.write(s);
  program
    .command('dag')
    .description("draw a run's DAG: as a text tree, or into an SVG or a Mermaid file")
    .argument('<id>', 'a run id, or a prefix of one that only one run has')
    .option('--svg <file>', 'write the DAG as SVG to this file')
    .option('--mermaid <file>', 'write the DAG as a Mermaid flowchart to this file')
    .action((id: string, options: { svg?: string; mermaid?: string }, cmd: Command) =>
      withStore(ctx, cmd, async (store, dir) => {
        const run = await resolveRun(store, dir, id);
        const render = await loadRender();
        if (options.svg === undefined && options.mermaid === undefined) {
          const tree = render.runToTextTree(run);
          return out(tree.endsWith('\n') ? tree : tree + '\n');
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
          out(`Wrote ${target}\n`);
        }
      }),
    );
};

/** The renderers, loaded only by the commands that draw. */
const loadRender = () => import('../render');

// the program

const buildProgram = (ctx: Context): Command => {
  const program = new Command('stepcache')
    .description('Look at stepcache runs, look after the cache, draw a run\'s DAG.')
    .option('--dir <path>', 'the store directory (default: $STEPCACHE_DIR, or ./.stepcache), relative to the current directory')
    .option('--verbose', 'print stack traces with errors')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void ctx.io.stdout.write(s),
      writeErr: (s) => void ctx.io.stderr.write(s),
      outputError: (s, write) => write(`stepcache: ${oneLine(s.replace(/^error: /, ''))}\n`),
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
  workerCommand(program, { cwd: ctx.cwd, env: ctx.env, stdout: ctx.io.stdout, stderr: ctx.io.stderr });
  return program;
};

const stackOf = (e: unknown): string | undefined => (typeof e === 'object' && e !== null && 'stack' in e && typeof e.stack === 'string' ? e.stack : undefined);

const causeOf = (e: unknown): unknown => (typeof e === 'object' && e !== null && 'cause' in e ? e.cause : undefined);

const describeError = (e: unknown, verbose: boolean): string => {
  const message = toError(e).message;
  if (!verbose) return `stepcache: ${oneLine(message)}\n`;
  let text = `stepcache: ${message}\n${stackOf(e) ?? ''}\n`;
  for (let cause = causeOf(e), depth = 0; cause !== undefined && depth < 5; cause = causeOf(cause), depth++) {
    text += `Caused by: ${stackOf(cause) ?? toError(cause).message}\n`;
  }
  return text;
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
