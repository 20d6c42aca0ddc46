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

  let runStartedAt: number | undefined;
  let planned = 0;
  let started = 0;
  let done = 0;
  /** Steps started and not yet done, oldest first. */
  let running: string[] = [];
  let last: string | undefined;
  let shown = false;
  let timer: ReturnType<typeof setInterval> | undefined;

  const write = (s: string): void => void stream.write(s);

  const status = (): string => {
    const total = Math.max(options.total ?? planned, started);
    const names = running.length === 0 ? (last ?? '') : [...running].reverse().slice(0, 2).join(', ') + (running.length > 2 ? ` +${running.length - 2}` : '');
    const elapsed = runStartedAt === undefined ? '' : ` · ${formatDuration(now() - runStartedAt)} elapsed`;
    const text = `[${done}/${total}]${names === '' ? '' : ` ${names}`}${elapsed}`;
    const columns = 'columns' in stream && typeof stream.columns === 'number' && stream.columns > 1 ? stream.columns - 1 : undefined;
    return columns !== undefined && text.length > columns ? text.slice(0, columns - 1) + '…' : text;
  };

  const render = (): void => {
    write(CLEAR_LINE + status());
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
  const startTimer = (): void => {
    if (!tty || refreshMs <= 0 || timer !== undefined) return;
    timer = setInterval(render, refreshMs);
    timer.unref?.();
  };
  /** A line of its own; on a terminal, above the status line, which is drawn again if a run is going on. */
  const permanent = (line: string): void => {
    if (!tty) return write(line + '\n');
    clear();
    write(line + '\n');
    if (runStartedAt !== undefined) render();
  };
  const settle = (name: string): void => {
    const at = running.indexOf(name);
    if (at !== -1) running.splice(at, 1);
    last = name;
    done++;
  };

  /** Updates the counts from an event. */
  const track = (event: RunEvent): void => {
    switch (event.type) {
      case 'run-started':
        runStartedAt = now();
        planned = event.steps.length;
        started = done = 0;
        running = [];
        last = undefined;
        return startTimer();
      case 'step-started':
        started++;
        running.push(event.step);
        return;
      case 'step-skipped':
        started++;
        return settle(event.step);
      case 'step-cached':
      case 'step-executed':
      case 'step-failed':
        return settle(event.step);
      case 'run-finished':
        stopTimer();
        runStartedAt = undefined;
        return;
      default:
        return;
    }
  };

  const onEvent = (event: RunEvent): void => {
    track(event);
    const line = logLineOf(event);
    if (event.type === 'run-finished') {
      clear();
      return line === undefined ? undefined : write(PREFIX[line.level] + line.text + '\n');
    }
    if (tty && PROGRESS_ONLY.has(event.type)) return render();
    if (line !== undefined) permanent(PREFIX[line.level] + line.text);
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
