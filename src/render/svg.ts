/**
 * A run as a standalone SVG picture: a title, a legend, and the DAG laid out by ELK with a box
 * per step coloured by status and the artifact each edge carries.
 *
 * @packageDocumentation
 */
import { formatDuration } from '../format/duration';
import { preview } from '../format/preview';
import { STATUS_STYLES, STEP_STATUSES, type NodeStatus } from '../format/status';
import { oneLine } from '../format/text';
import { escapeXml, textWidth, truncate } from './format';
import { layoutRun, NODE_FONT, type EdgeLayout, type NodeLayout, type RunLayout, type RunLayoutOptions } from './layout';
import { NO_EDGES_NOTE, type RenderableRun } from './model';

/**
 * Options of {@link runToSvg}: those of the layout.
 *
 * @example
 * const svg = await runToSvg(run, { direction: 'DOWN' });
 */
export type SvgOptions = RunLayoutOptions;

/** The fonts every text of a picture asks for, widest-metric fallback last. */
const FONT_FAMILY = "Helvetica, Arial, 'DejaVu Sans', sans-serif";
const MARGIN = 16;
const TITLE_FONT = 18;
const SUBTITLE_FONT = 12;
const LEGEND_FONT = 12;
const EDGE_COLOUR = '#6b7280';
const LABEL_COLOUR = '#374151';

const n = (x: number): string => String(Math.round(x * 10) / 10);
const attr = (value: string | number): string => `"${typeof value === 'number' ? n(value) : escapeXml(value)}"`;

/** An element with attributes; `undefined` attributes are left out. */
const el = (name: string, attributes: Readonly<Record<string, string | number | undefined>>, content?: string): string => {
  const attrs = Object.entries(attributes)
    .filter((kv): kv is [string, string | number] => kv[1] !== undefined)
    .map(([k, v]) => ` ${k}=${attr(v)}`)
    .join('');
  return content === undefined ? `<${name}${attrs}/>` : `<${name}${attrs}>${content}</${name}>`;
};

const text = (x: number, y: number, content: string, attributes: Readonly<Record<string, string | number | undefined>> = {}): string =>
  el('text', { x, y, ...attributes }, escapeXml(content));

const nodeSvg = (node: NodeLayout): string => {
  const style = STATUS_STYLES[node.status];
  const tooltip = [node.step, `${node.status}`, node.detail].filter((s) => s !== '').join(' — ');
  const lines = node.lines.map((line) =>
    text(node.x + node.width / 2, node.y + line.baseline, line.text, {
      'text-anchor': 'middle',
      'font-size': line.fontSize,
      'font-weight': line.bold ? 'bold' : undefined,
      fill: line.role === 'name' ? '#111827' : line.role === 'status' ? style.text : '#4b5563',
    }),
  );
  return el(
    'g',
    { class: `node status-${node.status}`, 'data-step': node.step },
    [
      el('title', {}, escapeXml(tooltip)),
      el('rect', {
        x: node.x,
        y: node.y,
        width: node.width,
        height: node.height,
        rx: 8,
        ry: 8,
        fill: style.fill,
        stroke: style.stroke,
        'stroke-width': 1.5,
        'stroke-dasharray': style.dashed ? '5 3' : undefined,
      }),
      ...lines,
    ].join(''),
  );
};

const edgeSvg = (edge: EdgeLayout, statusOf: (step: string) => NodeStatus, marker: string): string => {
  const [first, ...rest] = edge.points;
  if (first === undefined) return '';
  const d = `M${n(first.x)},${n(first.y)}${rest.map((p) => ` L${n(p.x)},${n(p.y)}`).join('')}`;
  const source = statusOf(edge.edge.from);
  // nothing flowed along an edge whose source did not produce its output
  const produced = source === 'executed' || source === 'cached';
  return el(
    'g',
    { class: 'edge', 'data-from': edge.edge.from, 'data-to': edge.edge.to, 'data-output': edge.edge.output, 'data-input': edge.edge.input },
    [
      el('title', {}, escapeXml(`${edge.edge.from}.${edge.edge.output} → ${edge.edge.to}.${edge.edge.input}`)),
      el('path', { d, fill: 'none', stroke: EDGE_COLOUR, 'stroke-width': 1.4, 'stroke-dasharray': produced ? undefined : '4 3', 'marker-end': `url(#${marker})` }),
    ].join(''),
  );
};

const labelSvg = (edge: EdgeLayout): string => {
  const { label } = edge;
  if (label.text === '') return '';
  return el(
    'g',
    { class: 'edge-label' },
    el('rect', { x: label.x, y: label.y, width: label.width, height: label.height, rx: 3, ry: 3, fill: '#ffffff', 'fill-opacity': 0.9 }) +
      text(label.x + label.width / 2, label.y + label.height - 4, label.text, { 'text-anchor': 'middle', 'font-size': NODE_FONT.label, fill: LABEL_COLOUR }),
  );
};

/** The legend: a swatch and a name per status, on one row. */
const legend = (statuses: readonly NodeStatus[], x0: number, y: number): { svg: string; width: number } => {
  let x = x0;
  const items = statuses.map((status) => {
    const style = STATUS_STYLES[status];
    const label = `${style.symbol} ${status}`;
    const item =
      el('rect', { x, y: y - 11, width: 18, height: 13, rx: 3, ry: 3, fill: style.fill, stroke: style.stroke, 'stroke-width': 1.2, 'stroke-dasharray': style.dashed ? '3 2' : undefined }) +
      text(x + 24, y, label, { 'font-size': LEGEND_FONT, fill: style.text });
    x += 24 + textWidth(label, LEGEND_FONT) + 18;
    return item;
  });
  return { svg: el('g', { class: 'legend' }, items.join('')), width: x - 18 - x0 };
};

const parametersText = (parameters: Readonly<Record<string, unknown>>): string =>
  Object.entries(parameters)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? truncate(v, 40) : preview(v, 40)}`)
    .join(', ');

/**
 * Draws a laid out run as SVG text: what {@link runToSvg} does after {@link layoutRun}.
 */
const layoutToSvg = (run: RenderableRun, layout: RunLayout): string => {
  const statusOf = new Map(layout.nodes.map((node) => [node.step, node.status]));
  const counts = STEP_STATUSES.map((s) => [s, layout.nodes.filter((node) => node.status === s).length] as const).filter(([, c]) => c > 0);
  const title = oneLine(run.pipeline);
  const subtitle = [`run ${oneLine(run.id)}`, run.status, formatDuration(run.durationMs, 'picture'), `${layout.nodes.length} step${layout.nodes.length === 1 ? '' : 's'}: ${counts.map(([s, c]) => `${c} ${s}`).join(', ') || 'none'}`, ...(run.edges === undefined ? [NO_EDGES_NOTE] : [])].join(' · ');
  const params = truncate(oneLine(parametersText(run.parameters)), 120);

  let y = MARGIN + TITLE_FONT;
  const header = [text(MARGIN, y, title, { 'font-size': TITLE_FONT, 'font-weight': 'bold', fill: '#111827' })];
  y += SUBTITLE_FONT + 10;
  header.push(text(MARGIN, y, subtitle, { 'font-size': SUBTITLE_FONT, fill: '#374151' }));
  let headerWidth = Math.max(textWidth(title, TITLE_FONT, true), textWidth(subtitle, SUBTITLE_FONT));
  if (params !== '') {
    y += SUBTITLE_FONT + 6;
    header.push(text(MARGIN, y, `parameters: ${params}`, { 'font-size': SUBTITLE_FONT, fill: '#4b5563' }));
    headerWidth = Math.max(headerWidth, textWidth(`parameters: ${params}`, SUBTITLE_FONT));
  }
  y += LEGEND_FONT + 14;
  const shown: NodeStatus[] = [...STEP_STATUSES, ...(statusOf.size > 0 && [...statusOf.values()].includes('pending') ? ['pending' as const] : [])];
  const key = legend(shown, MARGIN, y);
  const headerHeight = y + 8;

  const width = Math.ceil(Math.max(layout.width, Math.max(headerWidth, key.width) + 2 * MARGIN));
  const height = Math.ceil(headerHeight + layout.height);
  const marker = `stepcache-arrow-${run.id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const description = `${title} · ${subtitle}`;

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family=${attr(FONT_FAMILY)} role="img" aria-label=${attr(description)}>`,
    el('title', {}, escapeXml(description)),
    el('defs', {}, el('marker', { id: marker, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto' }, el('path', { d: 'M0,0 L10,5 L0,10 z', fill: EDGE_COLOUR }))),
    el('rect', { class: 'background', x: 0, y: 0, width, height, fill: '#ffffff' }),
    el('g', { class: 'header' }, header.join('') + key.svg),
    el(
      'g',
      { class: 'graph', transform: `translate(0,${n(headerHeight)})` },
      [
        el('g', { class: 'edges' }, layout.edges.map((e) => edgeSvg(e, (s) => statusOf.get(s) ?? 'pending', marker)).join('')),
        el('g', { class: 'edge-labels' }, layout.edges.map(labelSvg).join('')),
        el('g', { class: 'nodes' }, layout.nodes.map(nodeSvg).join('')),
      ].join(''),
    ),
    '</svg>',
  ].join('\n');
};

/**
 * A run as a standalone SVG document: a title (pipeline, run id, status, total duration,
 * parameters), a legend of the status colours, and the DAG laid out by ELK (layered, left to
 * right, orthogonal edges): a rounded box per step coloured by status with its name, status,
 * duration and the run a cached step came from (or why it ran, failed or was skipped), and
 * each edge drawn as ELK routed it, with an arrowhead and the artifact's name. Every text is
 * escaped for XML.
 *
 * @example
 * const run = await runner.run(trainingPipeline);
 * fs.writeFileSync('run.svg', await runToSvg(run));
 */
export const runToSvg = async (run: RenderableRun, options: SvgOptions = {}): Promise<string> => layoutToSvg(run, await layoutRun(run, options));
