/**
 * Tests that provision the outside tools they need. A test asks for a tool with {@link provide};
 * the tool is then, in this order:
 *
 * 1. **pointed at**: an environment variable (`STEPCACHE_TEST_…`) names an existing one, which is
 *    used as it is (and checked: a variable that points at nothing usable is an error, not a fallback);
 * 2. **found**: on the machine where the tool's own `find` looks (the `PATH`, Debian's paths,
 *    this repository's `node_modules/.bin`, the shared tools folder);
 * 3. **installed**: Debian packages through `apt-get` when running as root where apt-get exists,
 *    or an npm package that ships a binary into a tools folder in `os.tmpdir()`. Installs run under
 *    one cross-process file lock, so parallel jest workers never run apt twice at once, and each
 *    looks again once it holds the lock (another worker may have installed the tool meanwhile);
 * 4. else **one error** ({@link ProvisionError}) naming the tool, the test that needs it, why it
 *    cannot be installed here and the exact command that installs it. Never a silent skip.
 *
 * Provisioning is lazy: the test file that needs a tool asks for it in its `beforeAll`, so
 * `npx jest test/key.test.ts` never installs Jupyter, and a tool nobody asks for is never looked at.
 * (A jest `globalSetup` would run for every selection of test files.)
 *
 * Adding a tool is one file next to `jupyter.ts`: a {@link Tool} value (where to look, which
 * variable points at one, how to install it) plus, for a server, a start function built from
 * `server.ts` (`freePort`, `startServer`; `tempDir`/`removeDir` of `../fixtures`). A server's
 * `Found` is then a union: the running server the variable names (its URL), or the binaries
 * found or installed here, which the start function runs. Sketches:
 *
 * - PostgreSQL: `STEPCACHE_TEST_POSTGRES_URL` points at a running server; else `apt('postgresql-15')`
 *   provides `/usr/lib/postgresql/15/bin/{initdb,pg_ctl}`, run as an unprivileged user (`uid`/`gid`
 *   of `startServer`; `initdb -D <tempDir>`, `postgres -D <dir> -k <dir> -h 127.0.0.1 -p <freePort>`,
 *   ready when it prints `database system is ready to accept connections`).
 * - Redis: `STEPCACHE_TEST_REDIS_URL`; else `apt('redis-server')`, started as
 *   `redis-server --port <freePort> --bind 127.0.0.1 --save '' --maxmemory-policy noeviction`,
 *   ready when its port listens.
 * - S3: `STEPCACHE_TEST_S3_URL`; else `npmPackage('s3rver@3')` (binary `s3rver` in
 *   {@link npmToolBinary}), started on a free port with a `tempDir` as its directory.
 * - Chromium: `STEPCACHE_TEST_CHROMIUM` names the executable; else `apt('chromium')`, found at
 *   `/usr/bin/chromium`.
 *
 * @example
 * const nbconvert: Tool<string> = {
 *   name: "Jupyter's nbconvert",
 *   neededBy: 'test/notebook.test.ts',
 *   variable: 'STEPCACHE_TEST_NBCONVERT',
 *   fromVariable: (value) => (runs(value, ['--version'], process.env) ? value : undefined),
 *   find: (env) => findExecutable('jupyter-nbconvert', env),
 *   recipe: apt('jupyter-nbconvert'),
 * };
 * const command = await provide(nbconvert);
 *
 * @packageDocumentation
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createFileStepLock } from '../../../src/lock';

/**
 * The repository's root (the folder of package.json).
 *
 * @example
 * const tslab = path.join(REPOSITORY, 'node_modules', '.bin', 'tslab');
 */
export const REPOSITORY = path.resolve(__dirname, '..', '..', '..');

// model

/**
 * The facts about this machine that decide whether a missing tool can be installed here. Tests of
 * the rules inject them; {@link currentHost} reads the real ones.
 *
 * @example
 * const host: Host = { isRoot: false, hasAptGet: true, env: process.env };
 */
export interface Host {
  readonly isRoot: boolean;
  readonly hasAptGet: boolean;
  readonly env: NodeJS.ProcessEnv;
}

/**
 * How a missing tool is installed.
 *
 * - `Apt`: Debian packages, installed with apt-get (as root only);
 * - `Npm`: an npm package that ships a binary, installed into the shared tools folder
 *   ({@link npmToolBinary} finds its binaries; the folder's package.json records each, so one
 *   install keeps the others), never into this repository's node_modules;
 * - `ProjectDependency`: a devDependency of this repository. `npm ci` installs it, which is the
 *   tests' own prerequisite, so it is never installed from a test (that would replace node_modules
 *   under the running jest).
 *
 * @example
 * const recipes: Recipe[] = [apt('redis-server'), npmPackage('s3rver@3'), projectDependency('tslab')];
 */
export type Recipe =
  | { readonly _tag: 'Apt'; readonly packages: readonly string[] }
  | { readonly _tag: 'Npm'; readonly spec: string }
  | { readonly _tag: 'ProjectDependency'; readonly name: string };

/**
 * A tool some test needs, described as data: where an existing one is, and how to install it.
 * `Found` is what the test gets back (an executable's path, a URL, ...).
 *
 * @example
 * const chromium: Tool<string> = {
 *   name: 'Chromium',
 *   neededBy: 'test/render-browser.test.ts',
 *   variable: 'STEPCACHE_TEST_CHROMIUM',
 *   fromVariable: (value) => (fs.existsSync(value) ? value : undefined),
 *   find: () => (fs.existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined),
 *   recipe: apt('chromium'),
 * };
 */
export interface Tool<Found> {
  /** What it is, for messages: `Jupyter's nbconvert`. */
  readonly name: string;
  /** Which test needs it, for messages: `test/notebook.test.ts`. */
  readonly neededBy: string;
  /** The environment variable that points at an existing one. */
  readonly variable: string;
  /** The tool the variable's value points at, or undefined when it points at nothing usable. */
  readonly fromVariable: (value: string) => Found | undefined;
  /** Looks for the tool on this machine (not through the variable). */
  readonly find: (env: NodeJS.ProcessEnv) => Found | undefined;
  /** How to install it when it is nowhere. */
  readonly recipe: Recipe;
}

/**
 * A command to run: an executable, its arguments and extra environment variables.
 *
 * @example
 * const update: Command = { file: 'apt-get', args: ['update'], env: { DEBIAN_FRONTEND: 'noninteractive' } };
 */
export interface Command {
  readonly file: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * What installing a recipe takes on a host: commands to run, or why it cannot happen here and
 * what a person must run instead.
 *
 * @example
 * const plan: InstallPlan = planInstall(apt('redis-server'), { isRoot: true, hasAptGet: true, env: {} });
 */
export type InstallPlan =
  | { readonly _tag: 'Run'; readonly commands: readonly Command[] }
  | { readonly _tag: 'Impossible'; readonly why: string; readonly instruction: string };

/**
 * The error of a tool that is missing and cannot be installed here, or whose install failed.
 * Its message names the tool, the test that needs it, what went wrong and the command to run.
 *
 * @example
 * try {
 *   await provide(tool);
 * } catch (e) {
 *   if (e instanceof ProvisionError) console.error(e.tool, e.message);
 * }
 */
export class ProvisionError extends Error {
  override readonly name = 'ProvisionError';
  constructor(
    /** The tool's name. */
    readonly tool: string,
    message: string,
  ) {
    super(message);
  }
}

// constructors

/**
 * Debian packages, installed with apt-get.
 *
 * @example
 * const recipe = apt('jupyter-nbconvert');
 */
export const apt = (...packages: readonly string[]): Recipe => ({ _tag: 'Apt', packages });

/**
 * An npm package with a binary, installed into the shared tools folder.
 *
 * @example
 * const recipe = npmPackage('s3rver@3.7.1');
 */
export const npmPackage = (spec: string): Recipe => ({ _tag: 'Npm', spec });

/**
 * A devDependency of this repository, installed by `npm ci`.
 *
 * @example
 * const recipe = projectDependency('tslab');
 */
export const projectDependency = (name: string): Recipe => ({ _tag: 'ProjectDependency', name });

// rules

/** Quotes an argument for a POSIX shell when it needs quoting. */
const shellWord = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/**
 * A command as a person types it in a shell: `DEBIAN_FRONTEND=noninteractive apt-get install -y x`.
 *
 * @example
 * formatCommand({ file: 'apt-get', args: ['install', '-y', 'redis-server'] }); // 'apt-get install -y redis-server'
 */
export const formatCommand = (command: Command): string =>
  [...Object.entries(command.env ?? {}).map(([k, v]) => `${k}=${shellWord(v)}`), shellWord(command.file), ...command.args.map(shellWord)].join(' ');

/**
 * The folder that holds tools installed from npm and the install lock: `STEPCACHE_TEST_TOOLS_DIR`,
 * else `stepcache-test-tools` in `os.tmpdir()`, shared by every checkout and test run on this
 * machine, outside any repository.
 *
 * @example
 * const prefix = path.join(toolsDir(process.env), 'npm');
 */
export const toolsDir = (env: NodeJS.ProcessEnv): string => env['STEPCACHE_TEST_TOOLS_DIR'] || path.join(os.tmpdir(), 'stepcache-test-tools');

const npmPrefix = (env: NodeJS.ProcessEnv): string => path.join(toolsDir(env), 'npm');

/**
 * Where a binary of an npm package installed by {@link npmPackage} lives, if it is there.
 *
 * @example
 * const s3rver = npmToolBinary('s3rver', process.env); // undefined until npmPackage('s3rver@3') is installed
 */
export const npmToolBinary = (bin: string, env: NodeJS.ProcessEnv): string | undefined => {
  const file = path.join(npmPrefix(env), 'node_modules', '.bin', bin);
  return fs.existsSync(file) ? file : undefined;
};

const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive' } as const;

/** Waits up to ten minutes for dpkg's own lock, held by an apt run outside these tests. */
const DPKG_LOCK_WAIT = ['-o', 'DPkg::Lock::Timeout=600'];

const aptCommands = (packages: readonly string[]): readonly Command[] => [
  { file: 'apt-get', args: [...DPKG_LOCK_WAIT, 'update'], env: APT_ENV },
  { file: 'apt-get', args: [...DPKG_LOCK_WAIT, 'install', '-y', '--no-install-recommends', ...packages], env: APT_ENV },
];

/** The apt commands as a person runs them by hand. */
const aptByHand = (packages: readonly string[]): string => `apt-get update && apt-get install -y --no-install-recommends ${packages.map(shellWord).join(' ')}`;

/**
 * What installing `recipe` takes on `host`: a pure function of the recipe and the host's facts.
 *
 * @example
 * planInstall(apt('redis-server'), { isRoot: false, hasAptGet: true, env: {} });
 * // { _tag: 'Impossible', why: 'installing Debian packages needs root, and this process runs as …', instruction: 'as root: apt-get update && …' }
 */
export const planInstall = (recipe: Recipe, host: Host): InstallPlan => {
  switch (recipe._tag) {
    case 'Apt':
      if (!host.hasAptGet) {
        return {
          _tag: 'Impossible',
          why: 'this machine has no apt-get (not Debian or Ubuntu)',
          instruction: `install what the Debian packages ${recipe.packages.join(', ')} provide by this system's means`,
        };
      }
      if (!host.isRoot) {
        return { _tag: 'Impossible', why: 'installing Debian packages needs root, and the tests do not run as root', instruction: `as root: ${aptByHand(recipe.packages)}` };
      }
      return { _tag: 'Run', commands: aptCommands(recipe.packages) };
    case 'Npm':
      return {
        _tag: 'Run',
        commands: [{ file: 'npm', args: ['install', '--prefix', npmPrefix(host.env), '--no-audit', '--no-fund', recipe.spec] }],
      };
    case 'ProjectDependency':
      return {
        _tag: 'Impossible',
        why: `${recipe.name} is a devDependency of this repository and node_modules lacks it`,
        instruction: 'npm ci',
      };
  }
};

/**
 * The message of a tool that is missing: what, for which test, why it is not installed, and the
 * commands that fix it (including the variable that points at an existing one).
 *
 * @example
 * missingToolMessage(tool, 'this machine has no apt-get', 'install redis');
 */
export const missingToolMessage = (tool: Tool<unknown>, why: string, instruction: string): string =>
  [
    `${tool.neededBy} needs ${tool.name}, which is not found, and cannot install it: ${why}.`,
    `Install it: ${instruction}`,
    `or set ${tool.variable} to an existing one.`,
  ].join('\n');

// effects

/**
 * The facts of this process and machine.
 *
 * @example
 * const host = currentHost(); // { isRoot: true, hasAptGet: true, env: process.env } in a Debian container
 */
export const currentHost = (): Host => ({
  isRoot: process.getuid?.() === 0,
  hasAptGet: findExecutable('apt-get', process.env) !== undefined,
  env: process.env,
});

/**
 * An executable file named `name` on the `PATH` of `env`, or undefined.
 *
 * @example
 * findExecutable('apt-get', process.env); // '/usr/bin/apt-get' on Debian
 */
export const findExecutable = (name: string, env: NodeJS.ProcessEnv): string | undefined => {
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
};

/**
 * Whether a command runs and exits with 0 (within a minute, output ignored).
 *
 * @example
 * runs('/usr/bin/jupyter-nbconvert', ['--version'], process.env);
 */
export const runs = (file: string, args: readonly string[], env: NodeJS.ProcessEnv): boolean =>
  spawnSync(file, args, { env, stdio: 'ignore', timeout: 60_000 }).status === 0;

/** The lock every install takes (its only key), in the tools folder every checkout on this machine shares. */
const INSTALL_KEY = '5eed0f1e5eed0f1e';

/**
 * `env` without the variables npm sets for the script that started jest (`npm test`), so a
 * nested `npm` behaves as when typed in a shell.
 */
const withoutNpmScriptVariables = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => Object.fromEntries(Object.entries(env).filter(([name]) => !/^npm_/i.test(name)));

/** Runs a command to its end; resolves with its exit code (null: killed) and its combined output. */
const runToEnd = (command: Command, env: NodeJS.ProcessEnv): Promise<{ readonly code: number | null; readonly output: string }> =>
  new Promise((resolve) => {
    const child = spawn(command.file, [...command.args], { env: { ...withoutNpmScriptVariables(env), ...command.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => void (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString('utf8')));
    child.on('error', (e) => resolve({ code: null, output: `${output}\n${e.message}` }));
    child.on('close', (code) => resolve({ code, output }));
  });

/** Tells the person watching the tests why they pause (jest does not capture this). */
const notice = (line: string): void => void process.stderr.write(`${line}\n`);

/**
 * The tool, pointed at, found or installed; else a {@link ProvisionError} that says what to run.
 * Call it from the `beforeAll` of the test that needs the tool, with a timeout long enough for
 * an install (minutes).
 *
 * @example
 * let nbconvert: string;
 * beforeAll(async () => {
 *   nbconvert = await provide(nbconvertTool);
 * }, 10 * 60_000);
 */
export const provide = async <Found>(tool: Tool<Found>, host: Host = currentHost()): Promise<Found> => {
  const pointed = host.env[tool.variable];
  if (pointed !== undefined && pointed !== '') {
    const found = tool.fromVariable(pointed);
    if (found === undefined) throw new ProvisionError(tool.name, `${tool.neededBy} needs ${tool.name}, and ${tool.variable}=${pointed} points at none that works. Fix or unset ${tool.variable}.`);
    return found;
  }
  const present = tool.find(host.env);
  if (present !== undefined) return present;

  const plan = planInstall(tool.recipe, host);
  if (plan._tag === 'Impossible') throw new ProvisionError(tool.name, missingToolMessage(tool, plan.why, plan.instruction));

  const release = await createFileStepLock(path.join(toolsDir(host.env), 'locks')).acquire(INSTALL_KEY);
  try {
    const meanwhile = tool.find(host.env); // another worker may have installed it while we waited
    if (meanwhile !== undefined) return meanwhile;
    for (const command of plan.commands) {
      notice(`Installing ${tool.name} for ${tool.neededBy}: ${formatCommand(command)}`);
      const { code, output } = await runToEnd(command, host.env);
      if (code !== 0) {
        throw new ProvisionError(
          tool.name,
          `Installing ${tool.name} (${tool.neededBy} needs it) failed: ${formatCommand(command)} exited with ${String(code)}.\n${output.slice(-4000)}\nFix the cause and run it by hand, or set ${tool.variable} to an existing one.`,
        );
      }
    }
  } finally {
    await release();
  }
  const installed = tool.find(host.env);
  if (installed === undefined) {
    throw new ProvisionError(tool.name, `${plan.commands.map(formatCommand).join(' && ')} succeeded, yet ${tool.name} is still not found (${tool.neededBy} needs it). Set ${tool.variable} to an existing one.`);
  }
  return installed;
};
