import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { createWriteBehind, WORKER_READY_CELL, type WriteBehind } from '../src/store/write-worker';

/** A worker source that says it runs, then does `then`. */
const readyThen = (then: string): string =>
  `const { workerData } = require('node:worker_threads'); Atomics.store(new Int32Array(workerData.control), ${WORKER_READY_CELL}, 1); ${then}`;

/** A worker that writes each chunk correctly after `pause` (a statement run before each write). */
const pausingWorker = (pause: string): string =>
  readyThen(`
      const fs = require('node:fs');
      const c = new Int32Array(workerData.control), pos = new Float64Array(workerData.positions), data = new Uint8Array(workerData.ring);
      let next = Atomics.load(c, 1);
      for (;;) {
        while (Atomics.load(c, 0) === next) Atomics.wait(c, 0, next, 1000);
        ${pause}
        const slot = next % workerData.slots, length = Atomics.load(c, 5 + slot);
        fs.writeSync(Atomics.load(c, 2), data.subarray(slot * workerData.slotBytes, slot * workerData.slotBytes + length), 0, length, pos[slot]);
        next += 1;
        Atomics.store(c, 1, next);
        Atomics.notify(c, 1);
      }`);

let dir: string;
const behinds: WriteBehind[] = [];
const behind = (...args: Parameters<typeof createWriteBehind>): WriteBehind => {
  const made = createWriteBehind(...args);
  behinds.push(made);
  return made;
};
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepcache-write-worker-'));
});
afterEach(async () => {
  await Promise.all(behinds.splice(0).map((b) => b.close()));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes `bytes` through `wb` into a new file; returns the outcome, the file's bytes and the chunks seen. */
const writeThrough = (wb: WriteBehind, bytes: Uint8Array, name = 'out.bin') => {
  const file = path.join(dir, name);
  const fd = fs.openSync(file, 'wx');
  const chunks: Buffer[] = [];
  const outcome = wb.writeNow(fd, bytes, (chunk) => chunks.push(Buffer.from(chunk)));
  wb.closeAfterWorker(fd);
  return { outcome, file, onDisk: fs.readFileSync(file), seen: Buffer.concat(chunks) };
};

/** Starts `wb`'s worker (the first write is the caller's own) and waits until it runs. */
let firsts = 0;
const started = async (wb: WriteBehind): Promise<void> => {
  expect(writeThrough(wb, new Uint8Array(10).fill(1), `first-${firsts++}.bin`).outcome).toBe('written');
  await new Promise((resolve) => setTimeout(resolve, 500));
};

describe('createWriteBehind', () => {
  it('writes exactly the bytes, and shows every chunk in order, for any length across the ring', async () => {
    const small = behind({ slotBytes: 7, slots: 3 });
    const single = behind({ slotBytes: 5, slots: 1 });
    await Promise.all([started(small), started(single)]);
    let n = 0;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.boolean(), (bytes, useSingle) => {
        const { outcome, onDisk, seen } = writeThrough(useSingle ? single : small, bytes, `f${n++}.bin`);
        expect(outcome).toBe('written');
        expect(onDisk.equals(Buffer.from(bytes))).toBe(true);
        expect(seen.equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('stores the bytes as they were when called, whatever happens to them afterwards', async () => {
    const wb = behind({ slotBytes: 64 * 1024, slots: 2 });
    await started(wb);
    const bytes = new Uint8Array(1024 * 1024 + 3).map((_, i) => i % 251);
    const before = Buffer.from(bytes);
    const file = path.join(dir, 'then.bin');
    const fd = fs.openSync(file, 'wx');
    expect(wb.writeNow(fd, bytes, () => undefined)).toBe('written');
    bytes.fill(0); // the caller's code runs only now
    wb.closeAfterWorker(fd);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it('reuses its worker for later writes', async () => {
    const wb = behind({ slotBytes: 1024, slots: 4 });
    await started(wb);
    for (let i = 0; i < 5; i++) {
      const bytes = new Uint8Array(10_000 + i).fill(i + 1);
      const { outcome, onDisk } = writeThrough(wb, bytes, `again-${i}.bin`);
      expect(outcome).toBe('written');
      expect(onDisk.equals(Buffer.from(bytes))).toBe(true);
    }
  });

  it('answers failed when the worker cannot write (a descriptor open for reading), and keeps working afterwards', async () => {
    const wb = behind({ slotBytes: 1024, slots: 2 });
    await started(wb);
    const file = path.join(dir, 'read-only.bin');
    fs.writeFileSync(file, '');
    const fd = fs.openSync(file, 'r');
    const seen: number[] = [];
    expect(wb.writeNow(fd, new Uint8Array(5000).fill(9), (chunk) => seen.push(chunk.byteLength))).toBe('failed');
    expect(seen.reduce((a, b) => a + b, 0)).toBe(5000); // every chunk was still handed to the caller
    wb.closeAfterWorker(fd);
    const bytes = new Uint8Array(3000).fill(4);
    expect(writeThrough(wb, bytes, 'after.bin').outcome).toBe('written');
  });

  if (fs.existsSync('/dev/full')) {
    it('answers failed on a full disk', async () => {
      const wb = behind({ slotBytes: 1024, slots: 2 });
      await started(wb);
      const fd = fs.openSync('/dev/full', 'w');
      expect(wb.writeNow(fd, new Uint8Array(4096).fill(1), () => undefined)).toBe('failed');
      wb.closeAfterWorker(fd);
    });
  }

  it('gives up a worker that makes no progress instead of waiting forever', async () => {
    const wb = behind({ slotBytes: 16, slots: 2, stallMs: 200, workerSource: readyThen('setInterval(() => undefined, 1000);') });
    await started(wb);
    const fd = fs.openSync(path.join(dir, 'stalled.bin'), 'wx');
    const bytes = new Uint8Array(100).map((_, i) => i);
    const seen: Buffer[] = [];
    expect(wb.writeNow(fd, bytes, (chunk) => seen.push(Buffer.from(chunk)))).toBe('abandoned');
    expect(Buffer.concat(seen).equals(Buffer.from(bytes))).toBe(true); // every chunk shown once all the same: the caller's hash is whole
    wb.closeAfterWorker(fd); // closed once the retired worker is gone
  });

  it('gives up a worker that dies during a write, and writes the next one without it', async () => {
    const diesOnFirstChunk = readyThen('const c = new Int32Array(workerData.control); while (Atomics.load(c, 0) === 0) Atomics.wait(c, 0, 0, 50); process.exit(0);');
    const dying = behind({ slotBytes: 16, slots: 2, stallMs: 200, workerSource: diesOnFirstChunk });
    await started(dying);
    const fd = fs.openSync(path.join(dir, 'dead.bin'), 'wx');
    const seen: Buffer[] = [];
    expect(dying.writeNow(fd, new Uint8Array(100).fill(3), (chunk) => seen.push(Buffer.from(chunk)))).toBe('abandoned');
    expect(Buffer.concat(seen).equals(Buffer.alloc(100, 3))).toBe(true);
    dying.closeAfterWorker(fd);
    const bytes = new Uint8Array(100).fill(5);
    const next = writeThrough(dying, bytes, 'next.bin'); // a new worker, not started yet: the caller writes
    expect(next.outcome).toBe('written');
    expect(next.onDisk.equals(Buffer.from(bytes))).toBe(true);
  });

  it('start runs the worker before any write, once however often it is called, and the first write goes through it', async () => {
    const wb = behind({ slotBytes: 1024, slots: 4 });
    expect(wb.ready()).toBe(false);
    wb.start();
    wb.start();
    for (let tries = 0; tries < 500 && !wb.ready(); tries++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(wb.ready()).toBe(true);
    const bytes = new Uint8Array(10_000).map((_, i) => i % 253);
    const { outcome, onDisk } = writeThrough(wb, bytes, 'after-start.bin');
    expect(outcome).toBe('written');
    expect(onDisk.equals(Buffer.from(bytes))).toBe(true);
    expect(wb.ready()).toBe(true);
  });

  it('is not ready while its worker has not started, nor after it is closed', async () => {
    const never = behind({ slotBytes: 16, slots: 2, workerSource: '' });
    never.start();
    expect(never.ready()).toBe(false);
    const wb = behind({ slotBytes: 16, slots: 2 });
    await started(wb);
    expect(wb.ready()).toBe(true);
    await wb.close();
    expect(wb.ready()).toBe(false);
  });

  it('with a worker that falls behind, writes the chunks the ring has no room for itself: every byte lands once, in order', async () => {
    // A worker that writes correctly but slowly (5 ms per chunk): the ring of 2 slots is full most of the time.
    const slow = pausingWorker('Atomics.wait(c, 0, Atomics.load(c, 0), 5);');
    const wb = behind({ slotBytes: 1000, slots: 2, workerSource: slow });
    await started(wb);
    const bytes = new Uint8Array(50_500).map((_, i) => (i * 7) % 251);
    const { outcome, onDisk, seen } = writeThrough(wb, bytes, 'slow.bin');
    expect(outcome).toBe('written');
    expect(onDisk.equals(Buffer.from(bytes))).toBe(true);
    expect(seen.equals(Buffer.from(bytes))).toBe(true);
  });

  it('with a worker that falls behind, shows the chunks ahead (to be hashed) before it writes any chunk itself', async () => {
    // A worker that runs but takes nothing for 300 ms: the ring of 2 slots is full at once.
    const sleepy = pausingWorker('Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300); // a sleep no notify cuts short');
    const wb = behind({ slotBytes: 1000, slots: 2, workerSource: sleepy });
    await started(wb);
    const bytes = new Uint8Array(6_500).map((_, i) => (i * 7) % 251);
    const file = path.join(dir, 'ahead.bin');
    const fd = fs.openSync(file, 'wx');
    const sizesWhenShown: number[] = [];
    const outcome = wb.writeNow(fd, bytes, () => sizesWhenShown.push(fs.fstatSync(fd).size));
    wb.closeAfterWorker(fd);
    expect(outcome).toBe('written');
    expect(sizesWhenShown).toEqual([0, 0, 0, 0, 0, 0, 0]); // every chunk shown while nothing was written yet
    expect(fs.readFileSync(file).equals(Buffer.from(bytes))).toBe(true);
  });

  it('writes on the calling thread while its worker has not started', () => {
    const never = behind({ slotBytes: 16, slots: 2, stallMs: 200, workerSource: '' });
    const bytes = new Uint8Array(100).map((_, i) => i);
    const { outcome, onDisk, seen } = writeThrough(never, bytes, 'caller.bin');
    expect(outcome).toBe('written');
    expect(onDisk.equals(Buffer.from(bytes))).toBe(true);
    expect(seen.equals(Buffer.from(bytes))).toBe(true);
  });
});
