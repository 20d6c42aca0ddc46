/**
 * The command line in a child process that the chaos test kills: loads the CLI, prints
 * `started`, waits for a line on stdin (so that the kill is timed from the start of the command,
 * not from the loading of modules), then runs the command given as arguments and prints
 * `done <exit code> <milliseconds>`.
 *
 * Usage: `node --import tsx test/support/maintenance-child.ts cache prune --dir <store> ...`
 *
 * @packageDocumentation
 */
import * as readline from 'node:readline';
import { runCli } from '../../src/cli/cli';

const lines = readline.createInterface({ input: process.stdin });
lines.once('line', () => {
  lines.close();
  const began = performance.now();
  void runCli(process.argv.slice(2), { stdout: { write: () => true }, stderr: process.stderr }).then((code) => console.log(`done ${code} ${Math.round(performance.now() - began)}`));
});
console.log('started');
