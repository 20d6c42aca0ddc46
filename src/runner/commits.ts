/**
 * The writes a run leaves behind its steps: a step's cache entry is written while the steps after
 * it run (the metadata store commits the entries of consecutive steps together), and its key's
 * lock is released once that entry is durable. The run settles only after every one of them has
 * landed, and a write that failed fails its step then: an entry is durable before a run says it
 * succeeded, and before another process can take the key's lock and look for it.
 *
 * @packageDocumentation
 */
import { toError } from '../errors';

// model

/** @internal A step whose trailing write failed, and why. */
export interface FailedCommit {
  readonly step: string;
  readonly error: Error;
}

/** @internal The trailing writes of one run, by step. */
export interface PendingCommits {
  /** Tracks work a step leaves behind (its entry's write, its lock's release after it). */
  readonly track: (step: string, work: Promise<void>) => void;
  /** Settles (never rejects) once every work tracked for the step so far has settled. */
  readonly landed: (step: string) => Promise<void>;
  /**
   * Waits for every tracked work, including work tracked meanwhile; the steps whose work failed
   * since the last call (the first failure of each), each reported once.
   */
  readonly settle: () => Promise<readonly FailedCommit[]>;
}

// constructors

/**
 * @internal The trailing writes of a new run.
 *
 * @example
 * const commits = pendingCommits();
 * commits.track('train', metadata.putEntry(entry));
 * const failed = await commits.settle(); // [] once the entry is durable
 */
export const pendingCommits = (): PendingCommits => {
  const byStep = new Map<string, Promise<void>[]>();
  const unsettled = new Set<Promise<void>>();
  const failed = new Map<string, Error>();
  const track = (step: string, work: Promise<void>): void => {
    const done = work.then(
      () => undefined,
      (e: unknown) => {
        if (!failed.has(step)) failed.set(step, toError(e));
      },
    );
    unsettled.add(done);
    void done.then(() => unsettled.delete(done));
    const works = byStep.get(step);
    if (works === undefined) byStep.set(step, [done]);
    else works.push(done);
  };
  const landed = async (step: string): Promise<void> => {
    await Promise.all(byStep.get(step) ?? []);
  };
  const settle = async (): Promise<readonly FailedCommit[]> => {
    while (unsettled.size > 0) await Promise.all([...unsettled]);
    const failures = [...failed].map(([step, error]) => ({ step, error }));
    failed.clear();
    return failures;
  };
  return Object.freeze({ track, landed, settle });
};
