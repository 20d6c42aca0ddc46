/**
 * What a step's cache key was made of, kept with each cache entry in a readable form, so that a
 * miss can say exactly which component changed: the code (and which function in it), a parameter
 * (old and new value), an input (and which upstream step made new content), a file, the version,
 * a dependency, or the cache-key function's result.
 *
 * @packageDocumentation
 */
import * as E from 'fp-ts/Either';
import { encodeCanonical } from '../encoding/canonical';
import { diffFingerprints, type FingerprintPart } from '../fingerprint';
import { preview } from '../format/preview';
import { ownValue } from '../utils/own-property';

// model

/**
 * The components of one key, as stored with its cache entry.
 *
 * @example
 * const c: KeyComponents = { code: 'fingerprint:ab…', parameters: { gamma: { digest: '9c…', preview: '0.002' } }, inputs: {}, outputs: { output: 'auto' }, dependsOn: {}, files: {} };
 */
export interface KeyComponents {
  /** `fingerprint:<hash>` or `version:<manual version>`. */
  readonly code: string;
  /** The parts of the code fingerprint, when the code is fingerprinted. */
  readonly codeParts?: readonly FingerprintPart[];
  readonly parameters: Readonly<Record<string, { readonly digest: string; readonly preview: string }>>;
  readonly inputs: Readonly<Record<string, { readonly digest: string; readonly step: string; readonly output: string }>>;
  readonly outputs: Readonly<Record<string, string>>;
  readonly dependsOn: Readonly<Record<string, string>>;
  readonly files: Readonly<Record<string, string>>;
  readonly cacheKey?: string;
}

/**
 * One component that differs between the most recent entry of a step and the current key.
 *
 * @example
 * const change: KeyChange = { _tag: 'Parameter', name: 'gamma', before: '0.002', after: '0.0001' };
 */
export type KeyChange =
  | { readonly _tag: 'Code'; readonly changed: readonly string[]; readonly added: readonly string[]; readonly removed: readonly string[] }
  | { readonly _tag: 'Version'; readonly before?: string; readonly after?: string }
  | { readonly _tag: 'Parameter'; readonly name: string; readonly before?: string; readonly after?: string }
  | { readonly _tag: 'Input'; readonly name: string; readonly step?: string; readonly output?: string; readonly added: boolean; readonly removed: boolean }
  | { readonly _tag: 'File'; readonly path: string }
  | { readonly _tag: 'DependsOn'; readonly name: string }
  | { readonly _tag: 'CacheKey'; readonly before?: string; readonly after?: string }
  | { readonly _tag: 'Outputs' }
  | { readonly _tag: 'KeyFormat' };

// construction

/**
 * The digest and a short preview of a parameter value (for comparing and showing it later).
 *
 * @example
 * parameterComponent(hash, 0.002); // { digest: '…', preview: '0.002' }
 */
export const parameterComponent = (hash: (bytes: Uint8Array) => string, value: unknown): { readonly digest: string; readonly preview: string } => {
  const encoded = encodeCanonical(value);
  return { digest: E.isRight(encoded) ? hash(encoded.right) : 'unencodable', preview: preview(value, 40) };
};

// comparison

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

const recordOf = (x: unknown): Record<string, unknown> => (isRecord(x) ? x : {});

/** An own property only: names like `toString` must not find what a prototype has. */

const digestOf = (x: unknown): string | undefined => (isRecord(x) && typeof x['digest'] === 'string' ? x['digest'] : typeof x === 'string' ? x : undefined);

const versionOf = (code: unknown): string | undefined => (typeof code === 'string' && code.startsWith('version:') ? code.slice('version:'.length) : undefined);

const partsOf = (x: unknown): FingerprintPart[] =>
  Array.isArray(x) ? x.filter((p): p is FingerprintPart => isRecord(p) && typeof p['name'] === 'string' && typeof p['hash'] === 'string' && typeof p['kind'] === 'string') : [];

const changedKeys = (before: Record<string, unknown>, after: Record<string, unknown>): string[] =>
  [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => digestOf(ownValue(before, k)) !== digestOf(ownValue(after, k))).sort();

/**
 * Which components differ between an earlier key's components (as stored, so checked defensively)
 * and the current ones. Empty when they are equal.
 *
 * @example
 * diffComponents(previous, current); // [{ _tag: 'Parameter', name: 'gamma', before: '0.002', after: '0.0001' }]
 */
export const diffComponents = (previousStored: unknown, current: KeyComponents): KeyChange[] => {
  const previous = recordOf(previousStored);
  const changes: KeyChange[] = [];
  const beforeVersion = versionOf(previous['code']);
  const afterVersion = versionOf(current.code);
  if (previous['code'] !== current.code) {
    if (beforeVersion !== undefined || afterVersion !== undefined) {
      changes.push({ _tag: 'Version', ...(beforeVersion === undefined ? {} : { before: beforeVersion }), ...(afterVersion === undefined ? {} : { after: afterVersion }) });
    } else {
      const diff = diffFingerprints(partsOf(previous['codeParts']), current.codeParts ?? []);
      changes.push({ _tag: 'Code', changed: diff.changed, added: diff.added, removed: diff.removed });
    }
  }
  const beforeParams = recordOf(previous['parameters']);
  for (const name of changedKeys(beforeParams, current.parameters)) {
    const before = recordOf(ownValue(beforeParams, name))['preview'];
    const after = ownValue(current.parameters, name)?.preview;
    changes.push({ _tag: 'Parameter', name, ...(typeof before === 'string' ? { before } : {}), ...(after === undefined ? {} : { after }) });
  }
  const beforeInputs = recordOf(previous['inputs']);
  for (const name of changedKeys(beforeInputs, current.inputs)) {
    const now = ownValue(current.inputs, name);
    changes.push({ _tag: 'Input', name, ...(now === undefined ? {} : { step: now.step, output: now.output }), added: !Object.hasOwn(beforeInputs, name), removed: now === undefined });
  }
  for (const path of changedKeys(recordOf(previous['files']), current.files)) changes.push({ _tag: 'File', path });
  for (const name of changedKeys(recordOf(previous['dependsOn']), current.dependsOn)) changes.push({ _tag: 'DependsOn', name });
  const beforeKey = previous['cacheKey'];
  if (beforeKey !== current.cacheKey) {
    changes.push({ _tag: 'CacheKey', ...(typeof beforeKey === 'string' ? { before: beforeKey } : {}), ...(current.cacheKey === undefined ? {} : { after: current.cacheKey }) });
  }
  if (changedKeys(recordOf(previous['outputs']), current.outputs).length > 0) changes.push({ _tag: 'Outputs' });
  return changes;
};

// description

const arrow = (before: string | undefined, after: string | undefined): string => `(${before ?? 'unset'} -> ${after ?? 'unset'})`;

/**
 * One key change in words, as the log shows it.
 *
 * @example
 * describeChange({ _tag: 'Parameter', name: 'gamma', before: '0.002', after: '0.0001' }); // 'parameter gamma changed (0.002 -> 0.0001)'
 */
export const describeChange = (change: KeyChange): string => {
  switch (change._tag) {
    case 'Code': {
      const names = [...change.changed, ...change.added.map((n) => `${n}, new`), ...change.removed.map((n) => `${n}, gone`)];
      return names.length === 0 ? 'its code changed' : `its code changed (${names.join('; ')})`;
    }
    case 'Version':
      return `version changed ${arrow(change.before, change.after)}`;
    case 'Parameter':
      return change.before === undefined ? `parameter ${change.name} was added (${change.after ?? ''})` : change.after === undefined ? `parameter ${change.name} was removed` : `parameter ${change.name} changed ${arrow(change.before, change.after)}`;
    case 'Input':
      return change.removed ? `input ${change.name} was removed` : change.added ? `input ${change.name} was added` : `input ${change.name} changed (new content from ${change.step ?? 'upstream'})`;
    case 'File':
      return `file ${change.path} changed`;
    case 'DependsOn':
      return `dependency ${change.name} changed`;
    case 'CacheKey':
      return `its cacheKey changed ${arrow(change.before, change.after)}`;
    case 'Outputs':
      return 'its declared outputs changed';
    case 'KeyFormat':
      return 'the cache key format changed';
  }
};
