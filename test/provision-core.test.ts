/**
 * The provisioning core of the tests (support/provision/core.ts): the install plan as a function
 * of the host's facts, the one error a missing tool gives, and provide's order (variable, machine,
 * install). Installs run for real, with npm from a local folder into a temporary tools folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { removeDir, tempDir } from './support/fixtures';
import {
  apt,
  formatCommand,
  npmPackage,
  npmToolBinary,
  planInstall,
  projectDependency,
  provide,
  ProvisionError,
  runs,
  type Host,
  type Recipe,
  type Tool,
} from './support/provision/core';

const ROOT_WITH_APT: Host = { isRoot: true, hasAptGet: true, env: {} };
const USER_WITH_APT: Host = { isRoot: false, hasAptGet: true, env: {} };
const ROOT_WITHOUT_APT: Host = { isRoot: true, hasAptGet: false, env: {} };

const hostArb: fc.Arbitrary<Host> = fc.record({ isRoot: fc.boolean(), hasAptGet: fc.boolean() }).map((facts) => ({ ...facts, env: {} }));
const packagesArb = fc.array(fc.stringMatching(/^[a-z][a-z0-9.+-]{0,20}$/), { minLength: 1, maxLength: 4 });

/** The message of the ProvisionError that `p` rejects with. */
const provisionFailure = async (p: Promise<unknown>): Promise<ProvisionError> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof ProvisionError) return e;
    throw e;
  }
  throw new Error('expected a ProvisionError');
};

/** A tool that is nowhere and fails the test if anyone installs or looks it up through the variable. */
const absentTool = (recipe: Recipe): Tool<string> => ({
  name: 'the frobnicator',
  neededBy: 'test/frob.test.ts',
  variable: 'STEPCACHE_TEST_FROB',
  fromVariable: () => undefined,
  find: () => undefined,
  recipe,
});

describe('planInstall', () => {
  it('installs Debian packages exactly when running as root where apt-get exists', () => {
    fc.assert(
      fc.property(hostArb, packagesArb, (host, packages) => {
        const plan = planInstall(apt(...packages), host);
        expect(plan._tag === 'Run').toBe(host.isRoot && host.hasAptGet);
      }),
    );
  });

  it('as root with apt-get: apt-get update first, then a non-interactive install of exactly the packages', () => {
    const plan = planInstall(apt('jupyter-nbconvert', 'redis-server'), ROOT_WITH_APT);
    expect(plan._tag).toBe('Run');
    if (plan._tag !== 'Run') return;
    expect(plan.commands.map(formatCommand)).toEqual([
      'DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update',
      'DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends jupyter-nbconvert redis-server',
    ]);
  });

  it('not root: says root is needed and gives the command to run as root', () => {
    expect(planInstall(apt('jupyter-nbconvert'), USER_WITH_APT)).toEqual({
      _tag: 'Impossible',
      why: 'installing Debian packages needs root, and the tests do not run as root',
      instruction: 'as root: apt-get update && apt-get install -y --no-install-recommends jupyter-nbconvert',
    });
  });

  it('no apt-get: names the Debian packages whose contents are needed', () => {
    const plan = planInstall(apt('postgresql-15', 'redis-server'), ROOT_WITHOUT_APT);
    expect(plan).toMatchObject({ _tag: 'Impossible', why: expect.stringContaining('no apt-get') });
    expect(plan._tag === 'Impossible' && plan.instruction).toContain('postgresql-15, redis-server');
  });

  it('never installs a devDependency of the repository itself: that is npm ci', () => {
    fc.assert(
      fc.property(hostArb, (host) => {
        expect(planInstall(projectDependency('tslab'), host)).toMatchObject({ _tag: 'Impossible', instruction: 'npm ci' });
      }),
    );
  });

  it('installs an npm package into the tools folder, on any host', () => {
    fc.assert(
      fc.property(hostArb, (host) => {
        const plan = planInstall(npmPackage('s3rver@3.7.1'), { ...host, env: { STEPCACHE_TEST_TOOLS_DIR: '/tmp/tools' } });
        expect(plan._tag === 'Run' && plan.commands.map(formatCommand)).toEqual(['npm install --prefix /tmp/tools/npm --no-audit --no-fund s3rver@3.7.1']);
      }),
    );
  });
});

describe('formatCommand', () => {
  it('quotes what a shell would split or expand', () => {
    expect(formatCommand({ file: 'redis-server', args: ['--save', '', '--bind', '127.0.0.1'], env: { A: 'x y' } })).toBe("A='x y' redis-server --save '' --bind 127.0.0.1");
    expect(formatCommand({ file: 'sh', args: ['-c', "echo 'hi' $HOME"] })).toBe(`sh -c 'echo '\\''hi'\\'' $HOME'`);
  });
});

describe('provide', () => {
  it('not root: one error naming the tool, the test, why, the exact command and the variable', async () => {
    const error = await provisionFailure(provide(absentTool(apt('frobnicator')), USER_WITH_APT));
    expect(error.tool).toBe('the frobnicator');
    expect(error.message).toBe(
      [
        'test/frob.test.ts needs the frobnicator, which is not found, and cannot install it: installing Debian packages needs root, and the tests do not run as root.',
        'Install it: as root: apt-get update && apt-get install -y --no-install-recommends frobnicator',
        'or set STEPCACHE_TEST_FROB to an existing one.',
      ].join('\n'),
    );
  });

  it('no apt-get: the error says so and names the packages', async () => {
    const error = await provisionFailure(provide(absentTool(apt('frobnicator')), ROOT_WITHOUT_APT));
    expect(error.message).toContain('this machine has no apt-get');
    expect(error.message).toContain('frobnicator');
    expect(error.message).toContain('STEPCACHE_TEST_FROB');
  });

  it('a missing devDependency: the error says to run npm ci', async () => {
    const error = await provisionFailure(provide(absentTool(projectDependency('frob')), ROOT_WITH_APT));
    expect(error.message).toContain('frob is a devDependency of this repository and node_modules lacks it');
    expect(error.message).toContain('Install it: npm ci');
  });

  it('uses what the variable points at, without looking on the machine', async () => {
    const tool: Tool<string> = {
      ...absentTool(apt('frobnicator')),
      fromVariable: (value) => `checked ${value}`,
      find: () => {
        throw new Error('must not look on the machine');
      },
    };
    await expect(provide(tool, { ...USER_WITH_APT, env: { STEPCACHE_TEST_FROB: '/opt/frob' } })).resolves.toBe('checked /opt/frob');
  });

  it('a variable that points at nothing usable is an error naming it, not a fallback to the machine', async () => {
    const tool: Tool<string> = { ...absentTool(apt('frobnicator')), find: () => '/usr/bin/frob' };
    const error = await provisionFailure(provide(tool, { ...ROOT_WITH_APT, env: { STEPCACHE_TEST_FROB: '/nowhere/frob' } }));
    expect(error.message).toBe('test/frob.test.ts needs the frobnicator, and STEPCACHE_TEST_FROB=/nowhere/frob points at none that works. Fix or unset STEPCACHE_TEST_FROB.');
  });

  it('uses what it finds on the machine, without installing', async () => {
    const tool: Tool<string> = { ...absentTool(apt('frobnicator')), find: () => '/usr/bin/frob' };
    await expect(provide(tool, ROOT_WITH_APT)).resolves.toBe('/usr/bin/frob');
  });

  describe('installing an npm package that ships a binary', () => {
    let dir: string;
    let host: Host;
    beforeEach(() => {
      dir = tempDir('stepcache-provision-');
      const pkg = path.join(dir, 'hello-tool');
      fs.mkdirSync(pkg);
      fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'hello-tool', version: '1.0.0', bin: { 'hello-tool': 'hello.js' } }));
      fs.writeFileSync(path.join(pkg, 'hello.js'), '#!/usr/bin/env node\nconsole.log("hello");\n', { mode: 0o755 });
      host = { isRoot: false, hasAptGet: false, env: { ...process.env, STEPCACHE_TEST_TOOLS_DIR: path.join(dir, 'tools') } };
    });
    afterEach(() => removeDir(dir));

    const helloTool = (spec: string): Tool<string> => ({
      ...absentTool(npmPackage(spec)),
      find: (env) => npmToolBinary('hello-tool', env),
    });

    it('installs it into the tools folder; concurrent requests get the same binary, which runs', async () => {
      const tool = helloTool(path.join(dir, 'hello-tool'));
      expect(npmToolBinary('hello-tool', host.env)).toBeUndefined();
      const [first, second] = await Promise.all([provide(tool, host), provide(tool, host)]);
      expect(first).toBe(path.join(dir, 'tools', 'npm', 'node_modules', '.bin', 'hello-tool'));
      expect(second).toBe(first);
      expect(runs(first, [], host.env)).toBe(true);
    }, 120_000);

    it('a failing install is an error naming the command and the variable', async () => {
      const missing = path.join(dir, 'no-such-package');
      const error = await provisionFailure(provide(helloTool(missing), host));
      expect(error.message).toContain(`Installing the frobnicator (test/frob.test.ts needs it) failed: npm install --prefix ${path.join(dir, 'tools', 'npm')} --no-audit --no-fund ${missing} exited with`);
      expect(error.message).toContain('or set STEPCACHE_TEST_FROB to an existing one');
    }, 120_000);
  });
});
