/**
 * A run as Mermaid flowchart text, for Markdown that renders Mermaid (GitHub, GitLab, docs sites).
 *
 * @packageDocumentation
 */
import { formatDuration } from '../format/duration';
import { STATUS_STYLES, stepDetail, stepDuration, type NodeStatus } from '../format/status';
import { oneLine, shortRunId } from '../format/text';
import { edgesIn, NO_EDGES_NOTE, stepsInOrder, type RenderableRun } from './model';

/**
 * Options of {@link runToMermaid}.
 *
 * @example
 * const options: MermaidOptions = { direction: 'TD' };
 */
export interface MermaidOptions {
  /** Left to right or top down. @default 'LR' */
  readonly direction?: 'LR' | 'TD';
}

/** Text inside a quoted Mermaid label: Mermaid's own entity codes for what would end or confuse it. */
const mermaidText = (text: string): string =>
  oneLine(text)
    .replace(/#/g, '#35;')
    .replace(/"/g, '#quot;')
    .replace(/</g, '#lt;')
    .replace(/>/g, '#gt;')
    .replace(/&/g, '#amp;');

/** Node ids: the step name with Mermaid-safe characters, prefixed (so `end` or `graph` cannot clash with keywords), made unique. */
const nodeIds = (names: readonly string[]): Map<string, string> => {
  const ids = new Map<string, string>();
  const used = new Set<string>();
  for (const name of names) {
    const base = `s_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
    let id = base;
    for (let i = 2; used.has(id); i++) id = `${base}_${i}`;
    used.add(id);
    ids.set(name, id);
  }
  return ids;
};

/**
 * A run's DAG as Mermaid flowchart text: one node per step showing its name, status and
 * duration (and the run a cached step came from), a class per status (executed green, cached
 * blue, failed red, skipped grey), and edges labelled with the artifact they carry
 * (`output → input` when the input has another name).
 *
 * @example
 * const text = runToMermaid(run);
 * // ---
 * // title: "training_pipeline · run 20250101-123456…bcdef · completed · 1.021s"
 * // ---
 * // graph LR
 * //   s_training_data_loader["training_data_loader<br/>↺ cached · 0.004s<br/>cached from 20250101-120000…0f00d"]
 * //   s_svc_trainer["svc_trainer<br/>✓ executed · 0.932s"]
 * //   s_training_data_loader -->|"X_train"| s_svc_trainer
 * //   ...
 * //   classDef cached fill:#dbeafe,stroke:#1d4ed8,color:#1e3a8a
 * //   class s_training_data_loader cached
 */
export const runToMermaid = (run: RenderableRun, options: MermaidOptions = {}): string => {
  const steps = stepsInOrder(run);
  const ids = nodeIds(steps.map((s) => s.name));
  const title = `${oneLine(run.pipeline)} · run ${oneLine(shortRunId(run.id))} · ${run.status} · ${formatDuration(run.durationMs, 'picture')}`;
  const lines = ['---', `title: ${JSON.stringify(title)}`, '---', `graph ${options.direction ?? 'LR'}`];
  for (const s of steps) {
    const style = STATUS_STYLES[s.status];
    const parts = [s.name, `${style.symbol} ${s.status} · ${stepDuration(s.record)}`];
    if (s.status === 'cached' || s.status === 'pending') parts.push(stepDetail(s.record));
    lines.push(`  ${ids.get(s.name) ?? ''}["${parts.map(mermaidText).join('<br/>')}"]`);
  }
  if (run.edges === undefined) lines.push(`  %% ${NO_EDGES_NOTE}`);
  for (const e of edgesIn(run)) {
    const label = e.output === e.input ? e.output : `${e.output} → ${e.input}`;
    lines.push(`  ${ids.get(e.from) ?? ''} -->|"${mermaidText(label)}"| ${ids.get(e.to) ?? ''}`);
  }
  const present = new Set<NodeStatus>(steps.map((s) => s.status));
  for (const status of Object.keys(STATUS_STYLES) as NodeStatus[]) {
    if (status === 'pending' && !present.has(status)) continue;
    const style = STATUS_STYLES[status];
    lines.push(`  classDef ${status} fill:${style.fill},stroke:${style.stroke},color:${style.text}${style.dashed ? ',stroke-dasharray:5 3' : ''}`);
  }
  for (const status of Object.keys(STATUS_STYLES) as NodeStatus[]) {
    const members = steps.filter((s) => s.status === status).map((s) => ids.get(s.name) ?? '');
    if (members.length > 0) lines.push(`  class ${members.join(',')} ${status}`);
  }
  return `${lines.join('\n')}\n`;
};
