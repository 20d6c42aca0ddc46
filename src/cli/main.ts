#!/usr/bin/env node
/**
 * The `stepcache` executable: runs the command line on the process's arguments and exits with its code.
 *
 * @packageDocumentation
 */
import { runCli } from './cli';

// A reader that goes away (`stepcache runs list | head`) has all it wanted: end quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

// Ctrl-C or a termination asks a long-running command (`ui`) to stop cleanly; whatever has not
// ended shortly after ends as the signal would have ended it.
const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stop.abort();
    setTimeout(() => process.kill(process.pid, signal), 500).unref();
  });
}

void runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, isTTY: process.stdout.isTTY === true, signal: stop.signal }).then((code) => {
  process.exitCode = code;
});
