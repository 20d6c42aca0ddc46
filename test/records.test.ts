/**
 * Stored records are decoded, not cast: a damaged one names the field at fault.
 */
import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { CacheEntryCodec, decodeCacheEntry, decodeRunRecord, parametersLine, RunRecordCodec, type CacheEntry, type RunRecord } from '../src/store/records';

const RUN: RunRecord = {
  id: '20261130-101500123-00a0f00d1',
  pipeline: 'training',
  parameters: { gamma: 0.01 },
  status: 'completed',
  startedAt: '2026-11-30T10:15:00.123Z',
  steps: { train: { name: 'train', status: 'executed', durationMs: 932, key: 'ab', reason: 'it was never cached before' } },
  outputs: { model: { step: 'train', output: 'model' } },
  edges: [],
};
const ENTRY: CacheEntry = { key: 'ab', pipeline: 'training', step: 'train', runId: RUN.id, createdAt: 1, durationMs: 932, outputs: { model: { id: 'cd', kind: 'json', size: 2, format: 'auto' } } };

describe('decodeRunRecord and decodeCacheEntry', () => {
  it('accept intact records as they are', () => {
    expect(decodeRunRecord(RUN, RUN.id)).toEqual(E.right(RUN));
    expect(decodeCacheEntry(ENTRY, ENTRY.key)).toEqual(E.right(ENTRY));
  });

  it('accept outputs kept inside the entry (inline) as well as those without, and refuse inline bytes that are not text', () => {
    const inline: CacheEntry = { ...ENTRY, outputs: { model: { ...ENTRY.outputs['model']!, inline: 'NDI=' } } };
    expect(decodeCacheEntry(inline, inline.key)).toEqual(E.right(inline));
    expect(decodeCacheEntry({ ...ENTRY, outputs: { model: { ...ENTRY.outputs['model'], inline: 42 } } }, 'ab')).toMatchObject({ left: { message: expect.stringMatching(/^cache entry ab field outputs\.model\.inline: expected string, got 42/) } });
    const run: RunRecord = { ...RUN, steps: { train: { ...RUN.steps['train']!, outputs: inline.outputs } } };
    expect(decodeRunRecord(run, run.id)).toEqual(E.right(run));
  });

  it('name the field at fault, the type expected and the value found', () => {
    const damaged = { ...RUN, steps: { train: { ...RUN.steps['train'], status: 'x' } } };
    expect(decodeRunRecord(damaged, RUN.id)).toEqual(
      E.left({ _tag: 'DamagedRecord', record: 'run', id: RUN.id, message: `run ${RUN.id} field steps.train.status: expected "executed" | "cached" | "failed" | "skipped", got "x"` }),
    );
    const { pipeline: _dropped, ...withoutPipeline } = ENTRY;
    expect(decodeCacheEntry(withoutPipeline, 'ab')).toMatchObject({ left: { message: 'cache entry ab field pipeline is missing (expected string)' } });
    expect(decodeCacheEntry(42, 'ab')).toMatchObject({ left: { message: 'cache entry ab is not a record: got 42' } });
    expect(decodeCacheEntry({ ...ENTRY, createdAt: 'yesterday', durationMs: null }, 'ab')).toMatchObject({ left: { message: 'cache entry ab field createdAt: expected number, got "yesterday" (and 1 more)' } });
  });

  it('decide as the codecs do, whatever is stored in a field (property)', () => {
    const fields = fc.constantFrom('id', 'status', 'steps', 'startedAt', 'edges', 'parameters', 'durationMs');
    fc.assert(
      fc.property(fields, fc.anything(), (field, value) => {
        const stored = { ...RUN, [field]: value };
        expect(E.isRight(decodeRunRecord(stored, 'r'))).toBe(E.isRight(RunRecordCodec.decode(stored)));
        const entry = { ...ENTRY, [field === 'id' ? 'key' : 'outputs']: value };
        const decoded = decodeCacheEntry(entry, 'k');
        expect(E.isRight(decoded)).toBe(E.isRight(CacheEntryCodec.decode(entry)));
        if (E.isRight(decoded)) expect(decoded.right).toEqual(entry);
      }),
    );
  });
});

describe('parametersLine', () => {
  it('shows every parameter as name=value, any value included (a bigint, a cycle), cut to 80 characters', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    expect(parametersLine({ gamma: 0.1, kernel: 'rbf' })).toBe('gamma=0.1 kernel="rbf"');
    expect(parametersLine({ seed: 12n })).toBe('seed=12n');
    expect(() => parametersLine({ cyclic })).not.toThrow();
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.anything({ withBigInt: true })), (parameters) => parametersLine(parameters).length <= 80),
    );
  });
});
