/**
 * A quick picture of a DAG too large for ELK to lay out while a page waits (ELK's layered
 * layout grows much faster than the number of steps: seconds for a few hundred). Steps go in
 * columns by depth (the longest chain of steps feeding them), in recorded order within a
 * column; edges are straight lines. Linear in steps and edges.
 *
 * @packageDocumentation
 */
import { STATUS_STYLES, STEP_STATUSES } from '../format/status';
import { edgesIn, stepsInOrder, type RenderableRun } from '../render/model';
import { truncate } from '../render/format';
import { tag, type Html } from './html';

/**
 * From this many steps on, the dashboard draws this picture instead of ELK's.
 *
 * @example
 * Object.keys(run.steps).length >= LARGE_DAG_STEPS; // draw with largeDagSvg
 */
export const LARGE_DAG_STEPS = 150;

const BOX = { width: 150, height: 26, gapX: 60, gapY: 8, margin: 16 } as const;

/**
 * The DAG of a large run as SVG: a box per step coloured by status (with the step's name, and
 * its status in a tooltip), columns by depth, straight edges.
 *
 * @example
 * largeDagSvg(run).html; // '<svg …><g class="node status-cached" data-step="step_0_0">…'
 */
export const largeDagSvg = (run: RenderableRun): Html => {
  const steps = stepsInOrder(run);
  const depth = new Map<string, number>(steps.map((s) => [s.name, 0]));
  const feeding = new Map<string, string[]>();
  for (const e of edgesIn(run)) if (e.from !== e.to) feeding.set(e.to, [...(feeding.get(e.to) ?? []), e.from]);
  // stepsInOrder is topological, so every step's feeders have their depth already
  for (const s of steps) depth.set(s.name, Math.max(0, ...(feeding.get(s.name) ?? []).map((f) => (depth.get(f) ?? 0) + 1)));
  const rows = new Map<number, number>();
  const at = new Map<string, { x: number; y: number }>();
  for (const s of steps) {
    const column = depth.get(s.name) ?? 0;
    const row = rows.get(column) ?? 0;
    rows.set(column, row + 1);
    at.set(s.name, { x: BOX.margin + column * (BOX.width + BOX.gapX), y: BOX.margin + 24 + row * (BOX.height + BOX.gapY) });
  }
  const columns = Math.max(1, ...[...rows.keys()].map((c) => c + 1));
  const width = 2 * BOX.margin + columns * BOX.width + (columns - 1) * BOX.gapX;
  const height = BOX.margin * 2 + 24 + Math.max(1, ...rows.values()) * (BOX.height + BOX.gapY);
  const edges = edgesIn(run).flatMap((e) => {
    const a = at.get(e.from);
    const b = at.get(e.to);
    return a === undefined || b === undefined ? [] : [`M${a.x + BOX.width},${a.y + BOX.height / 2}L${b.x},${b.y + BOX.height / 2}`];
  });
  const nodes = steps.map((s) => {
    const p = at.get(s.name) ?? { x: 0, y: 0 };
    const style = STATUS_STYLES[s.status];
    return tag(
      'g',
      { class: `node status-${s.status}`, 'data-step': s.name },
      tag('title', {}, `${s.name} — ${s.status}`),
      tag('rect', { x: p.x, y: p.y, width: BOX.width, height: BOX.height, rx: 5, fill: style.fill, stroke: style.stroke, 'stroke-dasharray': style.dashed ? '4 2' : undefined }),
      tag('text', { x: p.x + 8, y: p.y + 17, 'font-size': 11, fill: style.text }, `${style.symbol} ${truncate(s.name, 22)}`),
    );
  });
  const counts = STEP_STATUSES.map((st) => `${steps.filter((s) => s.status === st).length} ${st}`).join(', ');
  return tag(
    'svg',
    { xmlns: 'http://www.w3.org/2000/svg', width, height, viewBox: `0 0 ${width} ${height}`, 'font-family': 'Helvetica, Arial, sans-serif', role: 'img', 'aria-label': `${run.pipeline}: ${steps.length} steps` },
    tag('text', { x: BOX.margin, y: BOX.margin + 8, 'font-size': 12, fill: '#374151' }, `${steps.length} steps (${counts}), in columns by depth; too many for the detailed layout`),
    tag('path', { d: edges.join(''), fill: 'none', stroke: '#9ca3af', 'stroke-width': 0.8 }),
    nodes,
  );
};
