/**
 * Whether a run recorded as `running` is still going: a run whose process was killed never
 * writes its end, so readers derive `interrupted` for a running run whose owner is gone (its
 * pid is dead on this host, or its heartbeat is older than a few of its beats).
 *
 * @packageDocumentation
 */
import * as os from 'node:os';
import type { RunOwner, RunRecord } from './records';

// model

/**
 * What tells whether a run's owner is alive: the host this process runs on, whether a pid is
 * alive on it, and the time.
 *
 * @example
 * const probe: OwnerProbe = { host: 'ci-1', isAlive: () => false, now: () => Date.now() };
 */
export interface OwnerProbe {
  readonly host: string;
  readonly isAlive: (pid: number) => boolean;
  readonly now: () => number;
}

/** What liveness reads of a run record or of its summary. */
interface Liveness {
  readonly status: RunRecord['status'];
  readonly owner?: RunOwner | undefined;
  readonly heartbeatAt?: string | undefined;
  readonly heartbeatEveryMs?: number | undefined;
}

/**
 * A heartbeat is stale after this many of its beats have passed without it (a busy machine can
 * delay one, never three), and never before a minute.
 */
const MISSED_BEATS = 3;
const MIN_STALE_MS = 60_000;

// the probe of this process

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists, it belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * This process's probe: its host name, signal 0 for pids, the wall clock.
 *
 * @example
 * ownerGone(record, systemProbe); // true for a running run whose process was killed
 */
export const systemProbe: OwnerProbe = Object.freeze({ host: os.hostname(), isAlive: pidAlive, now: Date.now });

// rules

/**
 * Whether a running run's owner is gone: its pid is dead on this host, or its last heartbeat is
 * older than three of its beats (and a minute). A run without an owner (recorded before owners
 * were) is never taken for gone.
 *
 * @example
 * ownerGone({ status: 'running', owner: { pid: 99999999, host: os.hostname() } }, systemProbe); // true
 */
export const ownerGone = (run: Liveness, probe: OwnerProbe = systemProbe): boolean => {
  if (run.status !== 'running' || run.owner === undefined) return false;
  if (run.owner.host === probe.host && !probe.isAlive(run.owner.pid)) return true;
  if (run.heartbeatAt === undefined || run.heartbeatEveryMs === undefined) return false;
  const beat = Date.parse(run.heartbeatAt);
  return !Number.isNaN(beat) && probe.now() - beat > Math.max(MISSED_BEATS * run.heartbeatEveryMs, MIN_STALE_MS);
};

/**
 * The run as a reader should see it: `interrupted` when it is recorded as running and its owner is gone.
 *
 * @example
 * withLiveStatus(killedRun).status; // 'interrupted'
 */
export const withLiveStatus = <R extends Liveness>(run: R, probe: OwnerProbe = systemProbe): R => (ownerGone(run, probe) ? { ...run, status: 'interrupted' } : run);
