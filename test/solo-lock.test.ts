/**
 * The solo fast path of the file lock: a process alone on its lock folder holds keys in memory,
 * and another process that shows up makes it take the files of the keys it holds before either
 * may lock a key through its file.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createFileStepLock, soloWhenAlone } from '../src/lock';
import { removeDir, tempDir } from './support/fixtures';

const root = path.resolve(__dirname, '..');
const KEY = 'ab'.repeat(32);
const OTHER = 'cd'.repeat(32);

let dir: string;
beforeEach(() => {
  dir = tempDir('solo-');
});
afterEach(() => removeDir(dir));

const lockOn = (folder: string) => soloWhenAlone(folder, createFileStepLock(folder), { pollMs: 10, idleMs: 50 });
const names = (): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);
const until = async (what: () => boolean): Promise<void> => {
  while (!what()) await new Promise((r) => setTimeout(r, 5));
};

/** A process that takes KEY through its own solo lock on the folder, says so in `log`, releases it and exits. */
const otherProcess = (folder: string, log: string) =>
  new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const code = `
      const fs = require('node:fs');
      const { createFileStepLock, soloWhenAlone } = require(${JSON.stringify(path.join(root, 'src/lock/index.ts'))});
      const lock = soloWhenAlone(${JSON.stringify(folder)}, createFileStepLock(${JSON.stringify(folder)}), { pollMs: 10, idleMs: 50 });
      fs.appendFileSync(${JSON.stringify(log)}, 'child waiting\\n');
      lock.acquire(${JSON.stringify(KEY)}).then(async (release) => {
        fs.appendFileSync(${JSON.stringify(log)}, 'child holds\\n');
        await release();
      });
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: root });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (exit) => resolve({ code: exit, stderr }));
  });

describe('a file lock with the solo fast path', () => {
  it('alone, holds keys in memory: no file per key, one holder at a time, keys independent', async () => {
    const lock = lockOn(dir);
    const first = await lock.acquire(KEY);
    const other = await lock.acquire(OTHER);
    expect(names()).toEqual(['f0f0f0f0f0f0f0f0.lock']);
    let second = false;
    const next = lock.acquire(KEY).then((release) => ((second = true), release));
    await new Promise((r) => setTimeout(r, 30));
    expect(second).toBe(false);
    await first();
    await (await next)();
    await other();
  });

  it('gives its solo marker up once it has held no key for idleMs, and takes it again for the next key', async () => {
    const lock = lockOn(dir);
    await (await lock.acquire(KEY))();
    await until(() => names().length === 0);
    const release = await lock.acquire(KEY);
    expect(names()).toEqual(['f0f0f0f0f0f0f0f0.lock']);
    await release();
  });

  it('close gives the solo marker up at once, unless a key is held in this process', async () => {
    const lock = soloWhenAlone(dir, createFileStepLock(dir), { idleMs: 60_000 });
    const release = await lock.acquire(KEY);
    await lock.close();
    expect(names()).toEqual(['f0f0f0f0f0f0f0f0.lock']);
    await release();
    await lock.close();
    expect(names()).toEqual([]);
  });

  it('another process that wants a key held here waits until it is released, the key held here through its file meanwhile', async () => {
    const lock = lockOn(dir);
    const log = path.join(os.tmpdir(), `solo-log-${process.pid}-${Date.now()}`);
    try {
      const release = await lock.acquire(KEY);
      const child = otherProcess(dir, log);
      // The other process shows up: the key held here becomes a file, and the solo marker goes.
      await until(() => names().includes(`${KEY}.lock`) && !names().includes('f0f0f0f0f0f0f0f0.lock'));
      await new Promise((r) => setTimeout(r, 100));
      expect(fs.readFileSync(log, 'utf8')).toBe('child waiting\n');
      fs.appendFileSync(log, 'parent releases\n');
      await release();
      const { code, stderr } = await child;
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(fs.readFileSync(log, 'utf8')).toBe('child waiting\nparent releases\nchild holds\n');
    } finally {
      fs.rmSync(log, { force: true });
    }
  }, 60_000);

  it('while another process is present, locks keys through their files', async () => {
    const holder = createFileStepLock(dir);
    // A live process's presence marker (this one's parent).
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `e0e0e0e0${'1'.repeat(32)}.lock`), JSON.stringify({ pid: process.ppid, host: os.hostname(), token: '1'.repeat(32), at: Date.now() }));
    const lock = lockOn(dir);
    const release = await lock.acquire(KEY);
    expect(names()).toContain(`${KEY}.lock`);
    expect(names()).not.toContain('f0f0f0f0f0f0f0f0.lock');
    await release();
    expect(names()).not.toContain(`${KEY}.lock`);
    await (await holder.acquire(OTHER))();
  });

  it('respects a key file made by a lock that does not take part: waits for it, and trusts no earlier lookup', async () => {
    const lock = lockOn(dir);
    await (await lock.acquire(OTHER))();
    const before = lock.aloneSince?.();
    expect(before).toBeDefined();
    const plain = await createFileStepLock(dir).acquire(KEY);
    let held = false;
    const waiting = lock.acquire(KEY).then((release) => ((held = true), release));
    await new Promise((r) => setTimeout(r, 100));
    expect(held).toBe(false);
    await plain();
    const release = await waiting;
    expect(lock.aloneSince?.()).toBeGreaterThan(before as number);
    await release();
  });

  it('recovers the markers of a process that died: its solo marker and its presence marker', async () => {
    const child = spawnSync(process.execPath, ['-e', '']);
    const dead = child.pid as number;
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'f0f0f0f0f0f0f0f0.lock'), JSON.stringify({ pid: dead, host: os.hostname(), token: '2'.repeat(32), at: Date.now() }));
    fs.writeFileSync(path.join(dir, `e0e0e0e0${'3'.repeat(32)}.lock`), JSON.stringify({ pid: dead, host: os.hostname(), token: '3'.repeat(32), at: Date.now() }));
    const lock = lockOn(dir);
    const release = await lock.acquire(KEY);
    expect(names()).toEqual(['f0f0f0f0f0f0f0f0.lock']);
    await release();
  });
});

describe('a runner alone on its store', () => {
  it('looks the key of each executed step up once (not again under its lock), and a re-run finds every step cached', async () => {
    const { createRunner, pipeline, silentLogger, step } = await import('../src');
    const { createSqliteMetadataStore } = await import('../src/store/metadata-store');
    const store = createSqliteMetadataStore(path.join(dir, 'metadata.sqlite'));
    const looked: string[] = [];
    const metadata = Object.freeze({ ...store, getEntries: (keys: readonly string[]) => (looked.push(...keys), store.getEntries(keys)) });
    const locks = path.join(dir, 'locks');
    const runner = createRunner({ dir, logger: silentLogger, metadata, lock: lockOn(locks) });
    const first = step(function solo_first() {
      return 1;
    });
    const next = step(function solo_next({ x }: { x: number }) {
      return x + 1;
    });
    const chain = pipeline('solo_chain', (p) => {
      let x = p.call(first);
      for (let i = 0; i < 5; i++) x = p.call(next.named(`solo_${i}`), { x });
      return { out: x };
    });
    try {
      const run = await runner.run(chain);
      expect(await run.output('out')).toBe(6);
      const keys = Object.values(run.steps).map((s) => s.key);
      // The first key is looked up before the process is alone (then again under the lock); every later one once.
      expect(looked.slice(2)).toEqual(keys.slice(1));
      expect(Object.values((await runner.run(chain)).steps).map((s) => s.status)).toEqual(Array(6).fill('cached'));
    } finally {
      await runner.close();
    }
  });
});
