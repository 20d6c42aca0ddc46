/**
 * The runner's logger: pluggable, and silent when asked. It is a subscriber to run events, which
 * it writes as log lines (`Using cached version of training_data_loader.`).
 *
 * @packageDocumentation
 */
import { formatDuration } from '../format/duration';
import type { RunEvent, RunSubscriber } from './events';

/**
 * Receives the runner's log lines, like `Using cached version of training_data_loader.`
 *
 * @example
 * const lines: string[] = [];
 * const collecting: Logger = { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
 */
export interface Logger {
  /** Progress: a step started, was served from cache, finished, and why it ran. */
  info(message: string): void;
  /** Something to look at that did not stop the run: a repaired artifact, a shallow fingerprint. */
  warn(message: string): void;
  /** A step failed, or the run did. */
  error(message: string): void;
  /**
   * When present, the runner gives this logger its run events instead of log lines (a progress
   * display does: it draws from events, and writes the lines of {@link logLineOf} as it sees fit).
   */
  readonly onEvent?: RunSubscriber;
}

/**
 * Logs to the console (`info` to stdout, `warn` and `error` to stderr).
 *
 * @example
 * createRunner({ logger: consoleLogger });
 */
export const consoleLogger: Logger = Object.freeze({
  info: (m: string) => console.log(m),
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
});

/**
 * Logs nothing.
 *
 * @example
 * createRunner({ logger: silentLogger });
 */
export const silentLogger: Logger = Object.freeze({ info: () => undefined, warn: () => undefined, error: () => undefined });

// run events as log lines

/** Seconds with three decimals, as the log lines show durations. */

/**
 * A log line: its level, and its text.
 *
 * @example
 * const line: LogLine = { level: 'info', text: 'Step svc_trainer has started.' };
 */
export interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly text: string;
}

/**
 * The log line of a run event, or `undefined` for events that are not logged (an artifact
 * written, a step repaired: its warning said so already).
 *
 * @example
 * logLineOf(runEvent('r1', { type: 'step-cached', step: 'a', key: 'k', cachedFrom: 'r0', outputs: {}, durationMs: 1 }));
 * // { level: 'info', text: 'Using cached version of a.' }
 */
export const logLineOf = (event: RunEvent): LogLine | undefined => {
  const info = (text: string): LogLine => ({ level: 'info', text });
  switch (event.type) {
    case 'run-started':
      return info(`Initiating a new run for the pipeline: ${event.pipeline}.`);
    case 'step-started':
      return info(`Step ${event.step} has started.`);
    case 'step-cached':
      return info(`Using cached version of ${event.step}.`);
    case 'step-executing':
      return info(`${event.step}: ${event.reason._tag === 'NeverCached' ? 'running' : 're-running'} because ${event.message}`);
    case 'step-remote-started':
      return info(`Step ${event.step} has started on worker ${event.worker}${event.attempt > 1 ? ` (attempt ${String(event.attempt)})` : ''}.`);
    case 'step-executed':
      return info(`Step ${event.step} has finished in ${formatDuration(event.durationMs, 'log')}${event.worker === undefined ? '' : ` on worker ${event.worker}`}.`);
    case 'step-failed':
      return { level: 'error', text: event.error.message };
    case 'step-skipped':
      return info(`Step ${event.step} was skipped because ${event.upstream} did not complete.`);
    case 'warning':
      return { level: 'warn', text: event.message };
    case 'run-finished':
      return event.status === 'completed'
        ? info(`Pipeline run ${event.runId} has finished in ${formatDuration(event.durationMs, 'log')}.`)
        : { level: 'error', text: `Pipeline run ${event.runId} failed: ${event.failed.join(', ')}.` };
    case 'artifact-written':
    case 'step-repaired':
      return undefined;
  }
};

/**
 * The subscriber that writes run events to a logger, as the lines `logLineOf` gives.
 *
 * @example
 * createRunner({ logger: silentLogger, onEvent: loggingSubscriber(myLogger) });
 */
export const loggingSubscriber =
  (logger: Logger): RunSubscriber =>
  (event) => {
    const line = logLineOf(event);
    if (line !== undefined) logger[line.level](line.text);
  };
