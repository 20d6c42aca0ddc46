/**
 * How a status is shown: its look, its words, its duration.
 */
import { paintStatus, STATUS_STYLES, stepDetail, stepDuration } from '../src/format/status';
import type { StepRunRecord } from '../src/store/records';

const RUN_ID = '20250101-123456789-00aabcdef';
const record = (fields: Partial<StepRunRecord> & Pick<StepRunRecord, 'status'>): StepRunRecord => ({ name: 's', durationMs: 932, ...fields });

describe('status', () => {
  it('says where a cached step came from, with a short or a full run id', () => {
    expect(stepDetail(record({ status: 'cached', cachedFrom: RUN_ID }))).toBe('cached from 20250101-123456…bcdef');
    expect(stepDetail(record({ status: 'cached', cachedFrom: RUN_ID }), { fullIds: true })).toBe(`cached from ${RUN_ID}`);
    expect(stepDetail(record({ status: 'cached' }))).toBe('cached');
  });

  it('says why a step ran, failed or was skipped, and when there is no result yet', () => {
    expect(stepDetail(record({ status: 'executed', reason: 'it was never cached before' }))).toBe('it was never cached before');
    expect(stepDetail(record({ status: 'failed', error: 'disk full', reason: 'x' }))).toBe('disk full');
    expect(stepDetail(record({ status: 'failed' }))).toBe('failed');
    expect(stepDetail(record({ status: 'skipped' }))).toBe('an upstream step did not complete');
    expect(stepDetail(undefined)).toBe('no result recorded yet');
  });

  it('shows a duration as pictures do, and no duration for a skipped or pending step', () => {
    expect([record({ status: 'executed' }), record({ status: 'skipped' }), undefined].map(stepDuration)).toEqual(['0.932s', 'not run', '–']);
  });

  it('paints step and run statuses for a terminal in the colours of the pictures', () => {
    expect(paintStatus('failed', true)).toBe('\x1b[31mfailed\x1b[0m');
    expect(paintStatus('completed', true)).toBe(`\x1b[${STATUS_STYLES.executed.terminal}mcompleted\x1b[0m`);
    expect(paintStatus('running', false)).toBe('running');
    expect(new Set(Object.values(STATUS_STYLES).map((s) => s.terminal)).size).toBe(Object.keys(STATUS_STYLES).length);
  });
});
