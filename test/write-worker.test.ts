import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { createWriteBehind, type WriteBehind } from '../src/store/write-worker';

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

describe('createWriteBehind', () => {
  it('writes exactly the bytes, and shows every chunk in order, for any length across the ring', () => {
    const small = behind({ slotBytes: 7, slots: 3 });
    const single = behind({ slotBytes: 5, slots: 1 });
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

  it('stores the bytes as they were when called, whatever happens to them afterwards', () => {
    const wb = behind({ slotBytes: 64 * 1024, slots: 2 });
    const bytes = new Uint8Array(1024 * 1024 + 3).map((_, i) => i % 251);
    const before = Buffer.from(bytes);
    const file = path.join(dir, 'then.bin');
    const fd = fs.openSync(file, 'wx');
    expect(wb.writeNow(fd, bytes, () => undefined)).toBe('written');
    bytes.fill(0); // the caller's code runs only now
    wb.closeAfterWorker(fd);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it('reuses its worker for later writes', () => {
    const wb = behind({ slotBytes: 1024, slots: 4 });
    for (let i = 0; i < 5; i++) {
      const bytes = new Uint8Array(10_000 + i).fill(i + 1);
      const { outcome, onDisk } = writeThrough(wb, bytes, `again-${i}.bin`);
      expect(outcome).toBe('written');
      expect(onDisk.equals(Buffer.from(bytes))).toBe(true);
    }
  });

  it('answers failed when the worker cannot write (a descriptor open for reading), and keeps working afterwards', () => {
    const wb = behind({ slotBytes: 1024, slots: 2 });
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
    it('answers failed on a full disk', () => {
      const wb = behind({ slotBytes: 1024, slots: 2 });
      const fd = fs.openSync('/dev/full', 'w');
      expect(wb.writeNow(fd, new Uint8Array(4096).fill(1), () => undefined)).toBe('failed');
      wb.closeAfterWorker(fd);
    });
  }

  it('gives up a worker that makes no progress instead of waiting forever', () => {
    const wb = behind({ slotBytes: 16, slots: 2, stallMs: 200, workerSource: 'setInterval(() => undefined, 1000);' });
    const file = path.join(dir, 'stalled.bin');
    const fd = fs.openSync(file, 'wx');
    expect(wb.writeNow(fd, new Uint8Array(100).fill(3), () => undefined)).toBe('abandoned');
    wb.closeAfterWorker(fd); // closed once the retired worker is gone
  });

  it('gives up a worker that died, and starts a new one for the next write', async () => {
    const dying = behind({ slotBytes: 16, slots: 2, stallMs: 200, workerSource: '' });
    const fd = fs.openSync(path.join(dir, 'dead.bin'), 'wx');
    expect(dying.writeNow(fd, new Uint8Array(100).fill(3), () => undefined)).toBe('abandoned');
    dying.closeAfterWorker(fd);
    await new Promise((resolve) => setTimeout(resolve, 50)); // lets the exit be seen
    const fd2 = fs.openSync(path.join(dir, 'dead-again.bin'), 'wx');
    expect(dying.writeNow(fd2, new Uint8Array(100).fill(3), () => undefined)).toBe('abandoned');
    dying.closeAfterWorker(fd2);
  });
});
