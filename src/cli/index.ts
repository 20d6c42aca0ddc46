/**
 * The `stepcache` command line and the progress reporter for long runs.
 *
 * @example
 * import { runCli, progressLogger } from 'stepcache/dist/cli';
 * const code = await runCli(['runs', 'list'], { stdout: process.stdout, stderr: process.stderr });
 *
 * @packageDocumentation
 */
export { runCli, EXIT_CODES } from './cli';
export type { CliIo, TextSink } from './cli';
export { progressLogger } from './progress';
export type { ProgressLogger, ProgressLoggerOptions, ProgressStream } from './progress';
export { formatAge, formatBytes, formatDuration, parseBytes, parseDuration } from './format';
