/**
 * Write-behind for synchronous stores: a long-lived worker thread writes a big artifact to its
 * file while the calling thread hashes it, without handing control back to user code before the
 * bytes are safe.
 *
 * The calling thread copies each chunk into a free slot of a small ring of shared memory (a
 * memory copy, several times faster than hashing or writing), signals the worker, and hashes
 * the chunk from the original bytes; the worker writes the slot to the file. When the ring is
 * full (the worker is behind: a busy machine, a slow disk), the calling thread hashes the chunks
 * ahead meanwhile (hashing needs no slot); once it has hashed them all, it writes the chunk
 * itself, at its own place in the file, instead of sleeping until a slot frees (on a machine
 * whose cores are busy, each such wait costs a turn of the scheduler, and the copy is saved). At
 * the end the calling thread waits until every slot is written. Nothing else runs on the calling thread
 * meanwhile, so what is stored is what the bytes were when the store was called; peak memory
 * grows only by the ring.
 *
 * A worker that fails to write (disk full, no permission) or stops making progress never loses
 * bytes nor hangs the process: the caller is told, and writes the bytes itself (which raises
 * the same error it always did, naming the file).
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';

// model

/**
 * How a write-behind ended:
 * - `written`: every byte is in the file.
 * - `failed`: the worker could not write (an error it met, or no worker could be started); it is
 *   idle, the file descriptor is the caller's again: write the bytes yourself.
 * - `abandoned`: the worker stopped making progress and is retired; it may still write the same
 *   bytes at the same places later. Write the bytes yourself and close the descriptor with
 *   `closeAfterWorker`, never before the worker is gone.
 *
 * @example
 * const outcome: WriteBehindOutcome = 'written';
 */
export type WriteBehindOutcome = 'written' | 'failed' | 'abandoned';

/**
 * A worker thread that writes chunks behind the calling thread.
 *
 * @example
 * const behind = createWriteBehind();
 * const fd = fs.openSync('/tmp/out.bin', 'w');
 * const outcome = behind.writeNow(fd, bytes, (chunk) => hasher.update(chunk));
 * if (outcome !== 'written') writeAllYourself(fd, bytes);
 * behind.closeAfterWorker(fd);
 */
export interface WriteBehind {
  /**
   * Writes `bytes` to `fd` from offset 0, calling `eachChunk` on the calling thread with every
   * chunk of the original bytes in order (while the worker writes, and ahead of the writing when the worker is behind), once each, whatever the
   * outcome. Returns once the worker has written everything, or failed. Synchronous: no other
   * code runs until it returns.
   */
  readonly writeNow: (fd: number, bytes: Uint8Array, eachChunk: (chunk: Uint8Array) => void) => WriteBehindOutcome;
  /**
   * Starts the worker now unless it runs, so that a big write later finds it ready (a worker takes
   * tens of milliseconds to start; until it runs, `writeNow` writes on the calling thread).
   */
  readonly start: () => void;
  /** Whether the worker runs and takes chunks. */
  readonly ready: () => boolean;
  /** Closes a descriptor now, or once a retired worker that may still use it is gone. */
  readonly closeAfterWorker: (fd: number) => void;
  /** Stops the worker (a later `writeNow` starts a new one). */
  readonly close: () => Promise<void>;
}

/**
 * Sizes and patience of a write-behind.
 *
 * @example
 * const options: WriteBehindOptions = { slotBytes: 1024 * 1024, slots: 8, stallMs: 10_000 };
 */
export interface WriteBehindOptions {
  /** Bytes of one slot (and of one chunk). @default 1 MiB */
  readonly slotBytes?: number;
  /** Slots of the ring. @default 8 */
  readonly slots?: number;
  /** How long without a chunk written before the worker is given up. @default 10 000 ms */
  readonly stallMs?: number;
  /** @internal The worker's source, for tests that need a worker that misbehaves. */
  readonly workerSource?: string;
}

// the shared control block: Int32 cells

const PRODUCED = 0; // chunks handed to the worker, ever (the calling thread increments)
const CONSUMED = 1; // chunks the worker is done with, ever (the worker increments)
const FD = 2; // the descriptor of the current write
const FAILED = 3; // 1 when the worker met an error during the current write
const READY = 4; // 1 once the worker runs: until then, the calling thread writes chunks itself
const LENGTHS = 5; // then one cell per slot: the length of its chunk

/**
 * @internal The cell of the control block (`workerData.control`, Int32) a worker sets to 1 once it
 * runs, for tests' own worker sources.
 *
 * @example
 * const source = `Atomics.store(new Int32Array(require('node:worker_threads').workerData.control), ${WORKER_READY_CELL}, 1);`;
 */
export const WORKER_READY_CELL = READY;

/** The worker: waits for chunks, writes each at its position, counts it done. Plain JavaScript, run with `eval`. */
const WORKER_SOURCE = `
const fs = require('node:fs');
const { workerData } = require('node:worker_threads');
const { control, positions, ring, slots, slotBytes } = workerData;
const ctrl = new Int32Array(control);
const pos = new Float64Array(positions);
const data = new Uint8Array(ring);
let next = Atomics.load(ctrl, ${CONSUMED});
Atomics.store(ctrl, ${READY}, 1);
for (;;) {
  while (Atomics.load(ctrl, ${PRODUCED}) === next) Atomics.wait(ctrl, ${PRODUCED}, next, 1000);
  const slot = next % slots;
  if (Atomics.load(ctrl, ${FAILED}) === 0) {
    try {
      const fd = Atomics.load(ctrl, ${FD});
      const length = Atomics.load(ctrl, ${LENGTHS} + slot);
      const chunk = data.subarray(slot * slotBytes, slot * slotBytes + length);
      for (let done = 0; done < length; ) done += fs.writeSync(fd, chunk, done, length - done, pos[slot] + done);
    } catch {
      Atomics.store(ctrl, ${FAILED}, 1);
    }
  }
  next += 1;
  Atomics.store(ctrl, ${CONSUMED}, next);
  Atomics.notify(ctrl, ${CONSUMED});
}
`;

/** One started worker with its shared memory. */
interface Started {
  readonly worker: Worker;
  readonly ctrl: Int32Array;
  readonly positions: Float64Array;
  readonly ring: Uint8Array;
  /** False once the worker exited or was given up. */
  alive: boolean;
  /** True once the worker's thread is gone. */
  exited: boolean;
}

const WAIT_SLICE_MS = 50;

// constructors

/**
 * A write-behind with its own worker, started by `start` or the first `writeNow` and `unref()`ed
 * so that it never keeps the process alive.
 *
 * @example
 * const behind = createWriteBehind({ slots: 4 });
 * behind.writeNow(fd, bytes, (chunk) => hasher.update(chunk)); // 'written'
 */
export const createWriteBehind = (options: WriteBehindOptions = {}): WriteBehind => {
  const slotBytes = options.slotBytes ?? 1024 * 1024;
  const slots = options.slots ?? 8;
  const stallMs = options.stallMs ?? 10_000;
  let started: Started | undefined;
  /** Descriptors a retired worker may still write to, closed when it is gone. */
  const retired = new Map<Worker, number[]>();

  const start = (): Started | undefined => {
    if (started?.alive === true) return started;
    try {
      const control = new SharedArrayBuffer((LENGTHS + slots) * 4);
      const positions = new SharedArrayBuffer(slots * 8);
      const ring = new SharedArrayBuffer(slots * slotBytes);
      const worker = new Worker(options.workerSource ?? WORKER_SOURCE, { eval: true, execArgv: [], workerData: { control, positions, ring, slots, slotBytes } });
      worker.unref();
      const own: Started = { worker, ctrl: new Int32Array(control), positions: new Float64Array(positions), ring: new Uint8Array(ring), alive: true, exited: false };
      const gone = (): void => {
        own.alive = false;
        own.exited = true;
        for (const fd of retired.get(worker) ?? []) fs.close(fd, () => undefined);
        retired.delete(worker);
      };
      worker.once('exit', gone);
      worker.once('error', gone);
      started = own;
      return own;
    } catch {
      return undefined;
    }
  };

  /** Waits until `cell` differs from `value`; false when the worker made no progress for `stallMs` or is gone. */
  const waitProgress = (own: Started, value: number): boolean => {
    let waited = 0;
    while (Atomics.load(own.ctrl, CONSUMED) === value) {
      if (!own.alive || waited >= stallMs) return false;
      Atomics.wait(own.ctrl, CONSUMED, value, WAIT_SLICE_MS);
      waited += WAIT_SLICE_MS;
    }
    return true;
  };

  const retire = (own: Started): void => {
    own.alive = false;
    if (started === own) started = undefined;
    if (!own.exited) retired.set(own.worker, retired.get(own.worker) ?? []);
    void own.worker.terminate();
  };

  let abandonedFd: { readonly fd: number; readonly worker: Worker } | undefined;

  const writeNow = (fd: number, bytes: Uint8Array, eachChunk: (chunk: Uint8Array) => void): WriteBehindOutcome => {
    const own = start();
    const chunkAt = (offset: number): Uint8Array => bytes.subarray(offset, Math.min(offset + slotBytes, bytes.byteLength));
    /** The offset of the next chunk to show to `eachChunk`: chunks are shown in order, independently of their writing. */
    let shown = 0;
    const showNext = (): void => {
      eachChunk(chunkAt(shown));
      shown += slotBytes;
    };
    /** Shows the chunks up to the one at `offset`, included. */
    const showThrough = (offset: number): void => {
      while (shown <= offset) showNext();
    };
    let failed = false;
    /** Writes a chunk on the calling thread: while the worker starts, when there is none, or when the worker is behind and every chunk is shown. */
    const writeHere = (offset: number): void => {
      if (failed) return;
      const chunk = chunkAt(offset);
      try {
        for (let done = 0; done < chunk.byteLength; ) done += fs.writeSync(fd, chunk, done, chunk.byteLength - done, offset + done);
      } catch {
        failed = true;
      }
    };
    if (own === undefined) {
      for (let offset = 0; offset < bytes.byteLength; offset += slotBytes) {
        showThrough(offset);
        writeHere(offset);
      }
      return failed ? 'failed' : 'written';
    }
    const { ctrl } = own;
    Atomics.store(ctrl, FAILED, 0);
    Atomics.store(ctrl, FD, fd);
    let produced = Atomics.load(ctrl, PRODUCED);
    /** Retires the worker; the chunks not shown yet still are, so that the caller sees every one whatever happens. */
    const giveUp = (): WriteBehindOutcome => {
      retire(own);
      abandonedFd = { fd, worker: own.worker };
      while (shown < bytes.byteLength) showNext();
      return 'abandoned';
    };
    for (let offset = 0; offset < bytes.byteLength; offset += slotBytes) {
      if (Atomics.load(ctrl, READY) === 0) {
        // The worker is still starting (the first big artifact of a process): no waiting for it.
        showThrough(offset);
        writeHere(offset);
        continue;
      }
      // The ring is full (the worker is behind): this thread shows the chunks ahead meanwhile (the
      // caller hashes them: work that needs no slot); once every chunk is shown, it writes the chunk
      // itself rather than wait for a slot (a wait costs a turn of the scheduler on a busy machine).
      while (produced - Atomics.load(ctrl, CONSUMED) >= slots && shown < bytes.byteLength) showNext();
      if (produced - Atomics.load(ctrl, CONSUMED) >= slots) {
        writeHere(offset);
        continue;
      }
      const slot = produced % slots;
      const chunk = chunkAt(offset);
      own.ring.set(chunk, slot * slotBytes);
      own.positions[slot] = offset;
      Atomics.store(ctrl, LENGTHS + slot, chunk.byteLength);
      produced += 1;
      Atomics.store(ctrl, PRODUCED, produced);
      Atomics.notify(ctrl, PRODUCED);
      showThrough(offset);
    }
    for (let consumed = Atomics.load(ctrl, CONSUMED); consumed !== produced; consumed = Atomics.load(ctrl, CONSUMED)) {
      if (!waitProgress(own, consumed)) return giveUp();
    }
    return failed || Atomics.load(ctrl, FAILED) !== 0 ? 'failed' : 'written';
  };

  const closeAfterWorker = (fd: number): void => {
    if (abandonedFd?.fd === fd) {
      const { worker } = abandonedFd;
      abandonedFd = undefined;
      const waiting = retired.get(worker);
      if (waiting !== undefined) {
        waiting.push(fd);
        return;
      }
    }
    fs.closeSync(fd);
  };

  const close = async (): Promise<void> => {
    const own = started;
    started = undefined;
    if (own !== undefined) await own.worker.terminate();
  };

  return Object.freeze({
    writeNow,
    start: (): void => void start(),
    ready: (): boolean => started?.alive === true && Atomics.load(started.ctrl, READY) === 1,
    closeAfterWorker,
    close,
  });
};

let shared: WriteBehind | undefined;

/**
 * The process's write-behind, shared by every synchronous store (one worker thread, started by
 * the first artifact a store of the process stores, so that it runs by the first big one).
 *
 * @example
 * sharedWriteBehind().writeNow(fd, bytes, (chunk) => hasher.update(chunk));
 */
export const sharedWriteBehind = (): WriteBehind => (shared ??= createWriteBehind());
