/**
 * A progress reporter for long runs, to pass as the runner's `logger`: it follows the run's events.
 * On a terminal it keeps one status line updated in place (`[3/7] svc_trainer · 12.4s elapsed`);
 * elsewhere (a file, a CI log) it prints the runner's lines as they come. Warnings and errors
 * always get their own line.
 *
 * @packageDocumentation
 */
import type { RunEvent, RunEventType, RunSubscriber } from '../runner/events';
import { logLineOf, type LogLine, type Logger } from '../runner/logger';
import { formatDuration } from './format';

// model

/** Where progress goes: a Node stream such as `process.stderr`, or anything with `write`. */
export type ProgressStream = NodeJS.WriteStream | { write(s: string): unknown; readonly isTTY?: boolean; readonly columns?: number };

/**
 * Options of {@link progressLogger}.
 *
 * @example
 * const options: ProgressLoggerOptions = { stream: process.stderr, total: 7 };
 */
export interface ProgressLoggerOptions {
  /** Where to write. The status line is used when `stream.isTTY` is true. */
  readonly stream: ProgressStream;
  /** How many steps a run has. @default the number of steps the run announces when it starts */
  readonly total?: number;
  /** How often the status line refreshes its elapsed time, in milliseconds; 0 refreshes only on events. @default 250 */
  readonly refreshMs?: number;
  /** The clock, in milliseconds. @default Date.now */
  readonly now?: () => number;
}

/**
 * A {@link Logger} that shows progress from the runner's events; `close()` stops the refresh timer
 * and clears the status line (a run's last event does both already). Its `info`, `warn` and
 * `error` print what the runner logs outside events, each on a line of its own.
 *
 * @example
 * const progress = progressLogger({ stream: process.stderr });
 * await createRunner({ logger: progress }).run(trainingPipeline);
 * progress.close();
 */
export interface ProgressLogger extends Logger {
  /** Follows a run. */
  readonly onEvent: RunSubscriber;
  close(): void;
}

const CLEAR_LINE = '\r\x1b[2K';

/** The events that only move the counts: on a terminal they show in the status line, not as lines. */
const PROGRESS_ONLY: ReadonlySet<RunEventType> = new Set(['run-started', 'step-started', 'step-cached', 'step-executed', 'step-skipped']);

const PREFIX: Readonly<Record<LogLine['level'], string>> = { info: '', warn: 'warning: ', error: 'error: ' };

// counting

/** Where a run is: what the status line shows. */
interface Progress {
  /** When the run started (by the logger's clock); undefined between runs. */
  readonly runStartedAt: number | undefined;
  /** How many steps the run announced. */
  readonly planned: number;
  readonly started: number;
  readonly done: number;
  /** Steps started and not yet done, oldest first. */
  readonly running: readonly string[];
  /** The step done last. */
  readonly last: string | undefined;
}

const IDLE: Progress = Object.freeze({ runStartedAt: undefined, planned: 0, started: 0, done: 0, running: [], last: undefined });

const settled = (p: Progress, step: string, skipped: boolean): Progress => ({
  ...p,
  started: p.started + (skipped ? 1 : 0),
  done: p.done + 1,
  running: p.running.filter((name) => name !== step),
  last: step,
});

/** The progress after an event: a step is done when it is served from cache, finishes, is skipped or fails. */
const advance = (p: Progress, event: RunEvent, now: number): Progress => {
  switch (event.type) {
    case 'run-started':
      return { ...IDLE, runStartedAt: now, planned: event.steps.length };
    case 'step-started':
      return { ...p, started: p.started + 1, running: [...p.running, event.step] };
    case 'step-skipped':
      return settled(p, event.step, true);
    case 'step-cached':
    case 'step-executed':
    case 'step-failed':
      return settled(p, event.step, false);
    case 'run-finished':
      return { ...p, runStartedAt: undefined };
    default:
      return p;
  }
};

/** The status line: `[done/total] newest running steps · elapsed`, cut to the terminal's width. */
const statusLine = (p: Progress, total: number | undefined, now: number, columns: number | undefined): string => {
  const all = Math.max(total ?? p.planned, p.started);
  const names = p.running.length === 0 ? (p.last ?? '') : [...p.running].reverse().slice(0, 2).join(', ') + (p.running.length > 2 ? ` +${p.running.length - 2}` : '');
  const elapsed = p.runStartedAt === undefined ? '' : ` · ${formatDuration(now - p.runStartedAt)} elapsed`;
  const text = `[${p.done}/${all}]${names === '' ? '' : ` ${names}`}${elapsed}`;
  return columns !== undefined && text.length > columns ? text.slice(0, columns - 1) + '…' : text;
};

// the logger

/**
 * Makes a progress logger for the runner: pass it as the runner's `logger`, and it follows runs
 * by their events.
 *
 * A step is done when it is served from cache, finishes, is skipped or fails. The total is
 * `options.total` when given, else the number of steps the run announced.
 *
 * @example
 * const runner = createRunner({ logger: progressLogger({ stream: process.stderr }) });
 */
export const progressLogger = (options: ProgressLoggerOptions): ProgressLogger => {
  const { stream } = options;
  const tty = stream.isTTY === true;
  const now = options.now ?? Date.now;
  const refreshMs = options.refreshMs ?? 250;
  const columns = 'columns' in stream && typeof stream.columns === 'number' && stream.columns > 1 ? stream.columns - 1 : undefined;
  let progress = IDLE;
  let shown = false;
  let timer: ReturnType<typeof setInterval> | undefined;

  const write = (s: string): void => void stream.write(s);
  const render = (): void => {
    write(CLEAR_LINE + statusLine(progress, options.total, now(), columns));
    shown = true;
  };
  const clear = (): void => {
    if (shown) write(CLEAR_LINE);
    shown = false;
  };
  const stopTimer = (): void => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };
  /** The elapsed time refreshes while a run goes on, on a terminal. */
  const keepTimer = (): void => {
    if (progress.runStartedAt === undefined) return stopTimer();
    if (!tty || refreshMs <= 0 || timer !== undefined) return;
    timer = setInterval(render, refreshMs);
    timer.unref?.();
  };
  /** A line of its own; on a terminal, above the status line, which is drawn again if a run is going on. */
  const permanent = (line: string): void => {
    if (!tty) return write(line + '\n');
    clear();
    write(line + '\n');
    if (progress.runStartedAt !== undefined) render();
  };

  const onEvent = (event: RunEvent): void => {
    progress = advance(progress, event, now());
    keepTimer();
    const line = logLineOf(event);
    const text = line === undefined ? undefined : PREFIX[line.level] + line.text;
    if (event.type === 'run-finished') {
      clear();
      return text === undefined ? undefined : write(text + '\n');
    }
    if (tty && PROGRESS_ONLY.has(event.type)) return render();
    if (text !== undefined) permanent(text);
  };

  return Object.freeze({
    onEvent,
    info: (message: string) => permanent(message),
    warn: (message: string) => permanent(`warning: ${message}`),
    error: (message: string) => permanent(`error: ${message}`),
    close: () => {
      stopTimer();
      if (tty) clear();
    },
  });
};
