/**
 * A progress reporter for long runs, to pass as the runner's `logger`. On a terminal it keeps one
 * status line updated in place (`[3/7] svc_trainer · 12.4s elapsed`); elsewhere (a file, a CI
 * log) it prints the runner's lines as they come. Warnings and errors always get their own line.
 *
 * @packageDocumentation
 */
import type { Logger } from '../runner/logger';
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
  /** How many steps a run has. Without it, the count is of the steps started so far. */
  readonly total?: number;
  /** How often the status line refreshes its elapsed time, in milliseconds; 0 refreshes only on log lines. @default 250 */
  readonly refreshMs?: number;
  /** The clock, in milliseconds. @default Date.now */
  readonly now?: () => number;
}

/**
 * A {@link Logger} that shows progress; `close()` stops the refresh timer and clears the status line
 * (a run's last line does both already).
 *
 * @example
 * const progress = progressLogger({ stream: process.stderr });
 * await createRunner({ logger: progress }).run(trainingPipeline);
 * progress.close();
 */
export interface ProgressLogger extends Logger {
  close(): void;
}

// the runner's lines

const RUN_STARTED = /^Initiating a new run for the pipeline: (.+)\.$/;
const STEP_STARTED = /^Step (.+) has started\.$/;
const STEP_CACHED = /^Using cached version of (.+)\.$/;
const STEP_FINISHED = /^Step (.+) has finished in .+\.$/;
const STEP_SKIPPED = /^Step (.+) was skipped because .+ did not complete\.$/;
const RUN_FINISHED = /^Pipeline run \S+ has finished in .+\.$/;
const RUN_FAILED = /^Pipeline run \S+ failed: .+\.$/;

const CLEAR_LINE = '\r\x1b[2K';

// the logger

/**
 * Makes a progress logger for the runner.
 *
 * Counts follow the runner's lines: a step is done when it is served from cache, finishes, is
 * skipped or fails (a failure is attributed to the one running step, or to the running step its
 * message names).
 *
 * @example
 * const runner = createRunner({ logger: progressLogger({ stream: process.stderr, total: 7 }) });
 */
export const progressLogger = (options: ProgressLoggerOptions): ProgressLogger => {
  const { stream } = options;
  const tty = stream.isTTY === true;
  const now = options.now ?? Date.now;
  const refreshMs = options.refreshMs ?? 250;

  let runStartedAt: number | undefined;
  let started = 0;
  let done = 0;
  /** Steps started and not yet done, oldest first. */
  let running: string[] = [];
  let last: string | undefined;
  let shown = false;
  let timer: ReturnType<typeof setInterval> | undefined;

  const write = (s: string): void => void stream.write(s);

  const status = (): string => {
    const total = options.total === undefined ? started : Math.max(options.total, started);
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
  const permanent = (line: string, active: boolean): void => {
    if (!tty) return write(line + '\n');
    clear();
    write(line + '\n');
    if (active) render();
  };
  const settle = (name: string): void => {
    const at = running.indexOf(name);
    if (at !== -1) running.splice(at, 1);
    last = name;
    done++;
  };
  const runActive = (): boolean => runStartedAt !== undefined;
  const endRun = (): void => {
    stopTimer();
    clear();
    runStartedAt = undefined;
  };

  /** Updates the counts from a line; true when the line is progress only (a terminal shows it in the status line). */
  const track = (message: string): boolean => {
    let m: RegExpExecArray | null;
    if ((m = RUN_STARTED.exec(message)) !== null) {
      runStartedAt = now();
      started = 0;
      done = 0;
      running = [];
      last = undefined;
      startTimer();
      return true;
    }
    if ((m = STEP_STARTED.exec(message)) !== null) {
      runStartedAt ??= now();
      startTimer();
      started++;
      running.push(m[1] as string);
      return true;
    }
    if ((m = STEP_CACHED.exec(message) ?? STEP_FINISHED.exec(message)) !== null) {
      settle(m[1] as string);
      return true;
    }
    if ((m = STEP_SKIPPED.exec(message)) !== null) {
      if (options.total === undefined) started++;
      settle(m[1] as string);
      return true;
    }
    return false;
  };

  const failedStep = (message: string): string | undefined => {
    if (running.length === 1) return running[0];
    const named = running.filter((name) => message.includes(name));
    return named.length === 1 ? named[0] : undefined;
  };

  return Object.freeze({
    info: (message: string) => {
      if (RUN_FINISHED.test(message)) {
        if (tty) endRun();
        else runStartedAt = undefined;
        return write(message + '\n');
      }
      const progress = track(message);
      if (!tty) return write(message + '\n');
      if (progress) return render();
      permanent(message, runActive());
    },
    warn: (message: string) => permanent(`warning: ${message}`, runActive()),
    error: (message: string) => {
      if (RUN_FAILED.test(message)) {
        if (tty) endRun();
        else runStartedAt = undefined;
        return write(`error: ${message}\n`);
      }
      const step = failedStep(message);
      if (step !== undefined) settle(step);
      permanent(`error: ${message}`, runActive());
    },
    close: () => {
      stopTimer();
      if (tty) clear();
    },
  });
};
