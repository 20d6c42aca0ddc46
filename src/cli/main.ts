#!/usr/bin/env node
/**
 * The `stepcache` executable: runs the command line on the process's arguments and exits with its code.
 *
 * @packageDocumentation
 */
import { runCli } from './cli';

void runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, isTTY: process.stdout.isTTY === true }).then((code) => {
  process.exitCode = code;
});
