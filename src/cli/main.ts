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

void runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, isTTY: process.stdout.isTTY === true }).then((code) => {
  process.exitCode = code;
});
