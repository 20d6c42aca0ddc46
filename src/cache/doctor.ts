/**
 * The store's check-up: metadata rows that do not decode, and cache entries whose artifacts are
 * missing or damaged (each artifact read back and its hash checked). Repair drops both: a dropped
 * row reads as absent, a dropped entry is a miss that executes its step again.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import type { ArtifactStore } from '../store/artifact-store';
import type { DamagedRow, MetadataStore } from '../store/metadata-store';
import { loadArtifact } from '../store/inline';
import type { CacheEntry } from '../store/records';
import { EMPTY_ARTIFACT_ID } from '../store/serialize';

// model

/**
 * A cache entry that cannot serve its step: which, and why (the first artifact at fault).
 *
 * @example
 * const broken: BrokenEntry = { key: 'ab12', pipeline: 'training', step: 'svc_trainer', problem: 'artifact 9f3c... is missing' };
 */
export interface BrokenEntry {
  readonly key: string;
  readonly pipeline: string;
  readonly step: string;
  readonly problem: string;
}

/**
 * What a check-up found, and whether it was repaired.
 *
 * @example
 * const report: DoctorReport = { damaged: [], broken: [], entriesChecked: 12, repaired: false };
 */
export interface DoctorReport {
  readonly damaged: readonly DamagedRow[];
  readonly broken: readonly BrokenEntry[];
  readonly entriesChecked: number;
  /** Whether the damaged rows and broken entries were dropped. */
  readonly repaired: boolean;
}

// the check-up

/** The first artifact of an entry that is missing or does not verify, as a message; `undefined` when all are whole. */
const problemOf = async (artifacts: ArtifactStore, entry: CacheEntry): Promise<string | undefined> => {
  for (const [output, d] of Object.entries(entry.outputs)) {
    if (d.id === EMPTY_ARTIFACT_ID) continue;
    const loaded = await loadArtifact(artifacts, d); // an inline output is checked against its id, with no file to read
    if (E.isLeft(loaded)) return `output ${output}: ${loaded.left.message}`;
  }
  return undefined;
};

/**
 * Checks a store: rows that do not decode, and entries whose artifacts are missing or damaged;
 * with `repair`, drops both.
 *
 * @example
 * const report = await examineStore(metadata, artifacts, { repair: true });
 * report.broken.length; // entries dropped because an artifact was missing or damaged
 */
export const examineStore = async (metadata: MetadataStore, artifacts: ArtifactStore, options: { readonly repair: boolean }): Promise<DoctorReport> => {
  const damaged = await metadata.findDamaged();
  const entries = await metadata.listEntries();
  const broken: Array<BrokenEntry & { readonly entry: CacheEntry }> = [];
  for (const entry of entries) {
    const problem = await problemOf(artifacts, entry);
    if (problem !== undefined) broken.push({ key: entry.key, pipeline: entry.pipeline, step: entry.step, problem, entry });
  }
  if (options.repair) {
    await metadata.dropDamaged(damaged);
    await metadata.deleteEntries(broken.map((b) => b.entry));
  }
  return { damaged, broken: broken.map(({ entry: _entry, ...rest }) => rest), entriesChecked: entries.length, repaired: options.repair };
};
