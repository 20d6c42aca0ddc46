/**
 * `stepcache schedules list|remove`: the schedules on the team's queue (made with `schedule` in
 * code), and removing one.
 *
 * @packageDocumentation
 */
import type { Command } from 'commander';
import { QUEUE_URL_VARIABLE } from '../distributed/connection';
import { DEFAULT_QUEUE_NAME } from '../distributed/job';
import type { ScheduleInfo } from '../distributed/schedule';
import { StepcacheError } from '../errors';
import { formatDuration } from '../format/duration';
import { escapeControls } from '../format/text';
import { formatTimestamp, table } from './format';

// model

/**
 * What the schedules command needs of the command line's context.
 *
 * @example
 * schedulesCommand(program, { env: process.env, stdout: process.stdout });
 */
export interface SchedulesCommandContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: { write(s: string): unknown };
}

interface QueueFlags {
  readonly url?: string;
  readonly queue: string;
}

// utils

/** When a schedule runs, as one cell: its cron pattern (and time zone), or `every 30s`. */
const timingOf = (s: ScheduleInfo): string =>
  s.cron !== undefined ? `cron ${s.cron}${s.tz === undefined ? '' : ` (${s.tz})`}` : s.everyMs !== undefined ? `every ${formatDuration(s.everyMs, 'clock')}` : '-';

const queueOf = (flags: QueueFlags, env: SchedulesCommandContext['env']) => {
  const url = flags.url ?? env[QUEUE_URL_VARIABLE];
  if (url === undefined || url === '') throw new StepcacheError('INVALID_OPTIONS', `Schedules live on the queue server: pass --url redis://host:6379 (or postgres://user:password@host:5432/database), or set ${QUEUE_URL_VARIABLE}.`, { field: 'url' });
  return { queueUrl: url, queue: flags.queue };
};

// the command

/**
 * Adds `schedules list [--json]` (id, pipeline, cron or every, next run, parameters) and
 * `schedules remove <id>` to the program, on the queue of `--url` (or `STEPCACHE_QUEUE_URL`) and
 * `--queue`.
 *
 * @example
 * schedulesCommand(program, { env: process.env, stdout: process.stdout });
 */
export const schedulesCommand = (program: Command, ctx: SchedulesCommandContext): void => {
  const out = (s: string) => void ctx.stdout.write(s);
  const schedules = program.command('schedules').description('look at and remove the schedules of pipelines on the queue (made with schedule() in code)');
  const queueOptions = (c: Command) =>
    c.option('--url <queue-url>', `the queue server, redis://host:6379 or postgres://user:password@host:5432/database (default: $${QUEUE_URL_VARIABLE})`).option('--queue <name>', 'the queue the schedules make jobs on', DEFAULT_QUEUE_NAME);

  queueOptions(schedules.command('list').description('list schedules, soonest first: id, pipeline, cron pattern or interval, next run, parameters'))
    .option('--json', 'print JSON instead of a table')
    .action(async (flags: QueueFlags & { json?: boolean }) => {
      const { listSchedules } = await import('../distributed/schedule');
      const found = await listSchedules(queueOf(flags, ctx.env));
      if (flags.json === true) {
        return out(escapeControls(JSON.stringify(found.map((s) => ({ ...s, ...(s.next === undefined ? {} : { next: s.next.toISOString() }) })), null, 2), 'json') + '\n');
      }
      if (found.length === 0) return out(`No schedules on queue ${escapeControls(flags.queue)}.\n`);
      const rows = found.map((s) => [s.id, s.pipeline, timingOf(s), s.next === undefined ? '-' : formatTimestamp(s.next.toISOString()), JSON.stringify(s.parameters)].map((c) => escapeControls(c)));
      out(table([{ header: 'ID' }, { header: 'PIPELINE' }, { header: 'WHEN' }, { header: 'NEXT RUN' }, { header: 'PARAMETERS' }], rows));
    });

  queueOptions(schedules.command('remove').description('remove a schedule: no more runs are made for it').argument('<id>', 'the schedule id (see schedules list)')).action(
    async (id: string, flags: QueueFlags) => {
      const { removeSchedule } = await import('../distributed/schedule');
      const removed = await removeSchedule(id, queueOf(flags, ctx.env));
      if (!removed) throw new StepcacheError('INVALID_OPTIONS', `There is no schedule ${JSON.stringify(id)} on queue ${flags.queue}; see stepcache schedules list.`, { field: 'id' });
      out(`Removed schedule ${escapeControls(id)}.\n`);
    },
  );
};
