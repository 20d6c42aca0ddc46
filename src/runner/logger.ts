/**
 * The runner's logger: pluggable, and silent when asked.
 *
 * @packageDocumentation
 */

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
