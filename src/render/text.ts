/**
 * A run as a compact tree for a terminal.
 *
 * @packageDocumentation
 */
import { formatDuration } from '../format/duration';
import { STATUS_STYLES, stepDetail, stepDuration } from '../format/status';
import { oneLine } from '../format/text';
import { truncate } from './format';
import { NO_EDGES_NOTE, parentsOf, stepsInOrder, type RenderableRun, type StepView } from './model';

/** What the tree says after a step's duration: where a cached step came from, why a step failed or was skipped, that a step has no result yet. */
const note = (s: StepView): string => {
  if (s.status === 'executed' || (s.status === 'cached' && s.record?.cachedFrom === undefined)) return '';
  const detail = truncate(oneLine(stepDetail(s.record)), 80);
  return s.status === 'failed' || s.status === 'skipped' ? `(${s.status}: ${detail})` : `(${detail})`;
};

/**
 * A run's DAG as a tree of text lines: a header (pipeline, run id, status, total duration),
 * then the steps in topological order, each indented under its first parent looking back
 * along the branch drawn so far (the nearest earlier step that feeds it), with a status symbol
 * (✓ executed, ↺ cached, ✗ failed, – skipped), its duration and, for a cached step, the run it
 * came from (for a failed or skipped step, why). A step fed by more steps names the others.
 *
 * @example
 * console.log(runToTextTree(run));
 * // mnist_pipeline · run 20250101-123456789-00aabcdef · completed · 2.514s
 * // ↺ importer_mnist  0.41ms  (cached from 20250101-120000…0f00d)
 * // └─ ↺ normalizer  0.22ms  (cached from 20250101-120000…0f00d)
 * //    └─ ✓ trainer  2.401s  [also after importer_mnist]
 * //       └─ ✓ evaluator  0.101s  [also after normalizer, importer_mnist]
 */
export const runToTextTree = (run: RenderableRun): string => {
  const steps = stepsInOrder(run);
  const parents = parentsOf(run);
  // Each step goes under the nearest step that feeds it on the branch drawn so far, so the
  // lines stay in topological order and a chain of steps reads as a chain.
  const treeParent = new Map<string, string>();
  const children = new Map<string, StepView[]>();
  const branch: string[] = [];
  for (const s of steps) {
    const feeding = parents.get(s.name) ?? [];
    while (branch.length > 0 && !feeding.includes(branch[branch.length - 1] ?? '')) branch.pop();
    const parent = branch[branch.length - 1];
    if (parent !== undefined) {
      treeParent.set(s.name, parent);
      children.set(parent, [...(children.get(parent) ?? []), s]);
    }
    branch.push(s.name);
  }

  const lines = [`${oneLine(run.pipeline)} · run ${oneLine(run.id)} · ${run.status} · ${formatDuration(run.durationMs, 'picture')}${run.edges === undefined ? ` · ${NO_EDGES_NOTE}` : ''}`];
  const describe = (s: StepView): string => {
    const parent = treeParent.get(s.name);
    const others = (parents.get(s.name) ?? []).filter((p) => p !== parent);
    const after = others.length === 0 ? '' : `[${parent === undefined ? 'after' : 'also after'} ${others.join(', ')}]`;
    return [`${STATUS_STYLES[s.status].symbol} ${s.name}`, stepDuration(s.record), note(s), after].filter((part) => part !== '').join('  ');
  };
  const visit = (s: StepView, prefix: string, connector: string): void => {
    lines.push(`${prefix}${connector}${describe(s)}`);
    const kids = children.get(s.name) ?? [];
    const childPrefix = prefix + (connector === '' ? '' : connector === '└─ ' ? '   ' : '│  ');
    kids.forEach((k, i) => visit(k, childPrefix, i === kids.length - 1 ? '└─ ' : '├─ '));
  };
  for (const s of steps) if (!treeParent.has(s.name)) visit(s, '', '');
  return lines.join('\n');
};
