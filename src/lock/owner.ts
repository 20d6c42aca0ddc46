/**
 * Who holds a lock file, and whether that holder can still be holding it.
 *
 * A lock file records its holder's pid, host name and a random token, and on Linux the
 * holder's incarnation: the boot id, the pid namespace and the process start time. With the
 * incarnation, a waiter on the same machine knows for certain whether the holder still runs:
 * a pid that is gone, a zombie, or reused by a newer process means the holder is dead.
 * Without it (another machine, another platform) only the file's age can tell.
 *
 * @internal
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';

// model

/**
 * The content of a lock file.
 *
 * @internal
 * @example
 * const owner: LockOwner = { pid: 4242, host: 'trainer-01', token: '9f'.repeat(16), at: 1_700_000_000_000 };
 */
export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  /** 32 hex digits, new for every acquisition: what a release compares before deleting. */
  readonly token: string;
  /** When the lock was taken (ms since the epoch); for people reading the file. */
  readonly at: number;
  /** Linux only: `<boot id>/<pid namespace>/<start time in clock ticks since boot>`. */
  readonly proc?: string;
}

/**
 * Whether a lock file's holder may still hold it: `held`, or breakable because the holder is
 * certainly `dead`, or because the file was not refreshed for longer than the stale limit (`expired`).
 *
 * @internal
 */
export type HolderState = 'held' | 'dead' | 'expired';

/**
 * How a waiter judges lock files.
 *
 * @internal
 */
export interface Judge {
  /** The host name this process records. */
  readonly host: string;
  readonly staleAfterMs: number;
}

// tokens and records

const TOKEN = /^[0-9a-f]{32}$/;
const PROC = /^([0-9a-f-]{1,64})\/(\d{1,24})\/(\d{1,24})$/;

/** @internal */
export const newToken = (): string => randomBytes(16).toString('hex');

/**
 * Reads a lock file's content; `undefined` when it is not a record (empty while its creator is
 * still writing it, or foreign). A record never yields a path: the token is checked to be hex.
 *
 * @internal
 * @example
 * parseOwner('{"pid":1,"host":"h","token":"00000000000000000000000000000000","at":0}')?.pid; // 1
 */
export const parseOwner = (raw: string): LockOwner | undefined => {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const { pid, host, token, at, proc } = v as Record<string, unknown>;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return undefined;
  if (typeof host !== 'string' || host.length === 0 || host.length > 255) return undefined;
  if (typeof token !== 'string' || !TOKEN.test(token)) return undefined;
  if (typeof at !== 'number' || !Number.isFinite(at)) return undefined;
  if (proc !== undefined && (typeof proc !== 'string' || !PROC.test(proc))) return undefined;
  return Object.freeze({ pid, host, token, at, ...(proc === undefined ? {} : { proc }) });
};

/** @internal */
export const formatOwner = (owner: LockOwner): string => `${JSON.stringify(owner)}\n`;

// this process

interface ProcStat {
  readonly state: string;
  readonly start: string;
}

/** Fields 3 (state) and 22 (start time) of `/proc/<pid>/stat`; the name before them may hold spaces and parentheses. */
const procStat = (pid: number | 'self'): ProcStat | undefined => {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const start = fields[19];
    return state !== undefined && start !== undefined && /^\d+$/.test(start) ? { state, start } : undefined;
  } catch {
    return undefined;
  }
};

let selfProc: string | undefined | null = null;
/**
 * This process's incarnation on Linux, `undefined` elsewhere or where `/proc` cannot tell.
 *
 * @internal
 */
export const processIncarnation = (): string | undefined => {
  if (selfProc !== null) return selfProc;
  selfProc = undefined;
  if (process.platform !== 'linux') return selfProc;
  try {
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const ns = /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))?.[1];
    const start = procStat('self')?.start;
    const proc = `${boot}/${ns}/${start}`;
    if (ns !== undefined && start !== undefined && PROC.test(proc)) selfProc = proc;
  } catch {
    // no /proc: the age rule alone decides
  }
  return selfProc;
};

/** @internal */
export const defaultHost = (): string => os.hostname();

/** Whether a pid names a process; EPERM means it exists but belongs to another user. */
const exists = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
};

/**
 * Whether a lock file's holder may still hold it, from the file's record and age.
 *
 * - Another host (or the same host name on another machine or in another pid namespace, which
 *   Linux records tell apart): its pids mean nothing here, so the file is `expired` once older
 *   than the stale limit. Holders refresh their files, so only a stopped holder's file gets old.
 * - A pid with no process: `dead`.
 * - On Linux, a zombie, or a process that started later than the holder (the pid was reused,
 *   say by a restarted container's pid 1): `dead`. The same process (this one included: another
 *   lock instance, another worker thread): `held`, however old the file, since a step that blocks
 *   its event loop for minutes (a synchronous training loop) cannot refresh the file but still runs.
 * - A live pid elsewhere: `expired` once older than the stale limit.
 * - An unreadable record (its creator is still writing it, or died before it did): the age rule.
 *
 * @internal
 * @example
 * judgeHolder(parseOwner(text), Date.now() - mtimeMs, { host: os.hostname(), staleAfterMs: 30_000 }); // 'held'
 */
export const judgeHolder = (owner: LockOwner | undefined, ageMs: number, judge: Judge): HolderState => {
  const byAge: HolderState = ageMs > judge.staleAfterMs ? 'expired' : 'held';
  if (owner === undefined || owner.host !== judge.host) return byAge;
  const theirs = owner.proc === undefined ? undefined : PROC.exec(owner.proc);
  const self = processIncarnation();
  const ours = self === undefined ? undefined : PROC.exec(self);
  const comparable = theirs != null && ours != null;
  if (comparable && (theirs[1] !== ours[1] || theirs[2] !== ours[2])) return byAge;
  if (!exists(owner.pid)) return 'dead';
  if (!comparable) return byAge;
  const stat = procStat(owner.pid);
  if (stat === undefined) return byAge; // gone since (the next look says so), or /proc hides other users' processes
  if (stat.state === 'Z' || stat.state === 'X' || stat.start !== theirs[3]) return 'dead';
  return 'held';
};
