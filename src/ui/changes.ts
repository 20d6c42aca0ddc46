/**
 * What changed between two cache entries of a step (its code, a parameter, an input, a file),
 * read from the key components each entry keeps; and what changed between two runs' parameters.
 *
 * @packageDocumentation
 */
import { describeChange, diffComponents, type KeyComponents } from '../cache/components';
import type { CacheEntry } from '../store/records';
import { preview } from '../format/preview';
import { ownValue } from '../utils/own-property';

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

const stringsOf = (x: unknown): Record<string, string> =>
  isRecord(x) ? Object.fromEntries(Object.entries(x).filter((kv): kv is [string, string] => typeof kv[1] === 'string')) : {};

/**
 * Stored key components read defensively (a store may hold entries written by any version):
 * `undefined` when the entry kept none.
 */
const componentsOf = (entry: CacheEntry): KeyComponents | undefined => {
  const c = entry.components;
  if (!isRecord(c) || typeof c['code'] !== 'string') return undefined;
  const objects = (x: unknown) => (isRecord(x) ? Object.fromEntries(Object.entries(x).filter((kv) => isRecord(kv[1]))) : {});
  const parameters = Object.fromEntries(
    Object.entries(objects(c['parameters'])).map(([k, v]) => [k, { digest: String((v as Record<string, unknown>)['digest'] ?? ''), preview: String((v as Record<string, unknown>)['preview'] ?? '') }]),
  );
  const inputs = Object.fromEntries(
    Object.entries(objects(c['inputs'])).map(([k, v]) => {
      const input = v as Record<string, unknown>;
      return [k, { digest: String(input['digest'] ?? ''), step: String(input['step'] ?? ''), output: String(input['output'] ?? '') }];
    }),
  );
  return {
    code: c['code'],
    ...(Array.isArray(c['codeParts']) ? { codeParts: c['codeParts'] as KeyComponents['codeParts'] & object } : {}),
    parameters,
    inputs,
    outputs: stringsOf(c['outputs']),
    dependsOn: stringsOf(c['dependsOn']),
    files: stringsOf(c['files']),
    ...(typeof c['cacheKey'] === 'string' ? { cacheKey: c['cacheKey'] } : {}),
  };
};

/**
 * What made a later entry's key differ from an earlier one's, in words (`parameter epochs
 * changed (1 -> 2)`); `undefined` when the later entry kept no components to compare.
 *
 * @example
 * entryChanges(before, after); // ['its code changed (train_model)', 'parameter epochs changed (1 -> 2)']
 */
export const entryChanges = (before: CacheEntry, after: CacheEntry): string[] | undefined => {
  if (before.key === after.key) return [];
  const current = componentsOf(after);
  if (current === undefined || componentsOf(before) === undefined) return undefined;
  const changes = diffComponents(before.components, current).map(describeChange);
  return changes.length === 0 ? ['its cache key changed'] : changes;
};

/**
 * The run parameters that differ between two runs, as `name: before -> after`.
 *
 * @example
 * parameterChanges({ epochs: 1 }, { epochs: 2 }); // ['epochs: 1 -> 2']
 */
export const parameterChanges = (before: Readonly<Record<string, unknown>>, after: Readonly<Record<string, unknown>>): string[] => {
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const show = (record: Readonly<Record<string, unknown>>, name: string): string => (Object.hasOwn(record, name) ? preview(ownValue(record, name), 60) : 'unset');
  return names.filter((n) => show(before, n) !== show(after, n) || JSON.stringify(ownValue(before, n)) !== JSON.stringify(ownValue(after, n))).map((n) => `${n}: ${show(before, n)} -> ${show(after, n)}`);
};
