/**
 * Lays a run's DAG out with elkjs (the Eclipse Layout Kernel): layered, left to right, edges
 * routed orthogonally, edge labels placed by ELK. The SVG renderer draws what this returns.
 *
 * @packageDocumentation
 */
import type { ELK, ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api';
import { STATUS_STYLES, stepDetail, stepDuration, type NodeStatus } from '../format/status';
import { oneLine } from '../format/text';
import { textWidth, wrap } from './format';
import { edgesIn, stepsInOrder, type RenderableRun, type RunEdge } from './model';

// model

/**
 * A point of the picture, in pixels from its top left corner.
 *
 * @example
 * const p: Point = { x: 12, y: 40 };
 */
export interface Point {
  readonly x: number;
  readonly y: number;
}

/**
 * A rectangle of the picture: its top left corner and its size.
 *
 * @example
 * const b: Box = { x: 12, y: 40, width: 160, height: 66 };
 */
export interface Box extends Point {
  readonly width: number;
  readonly height: number;
}

/**
 * One line of text inside a node: its text, font and baseline (from the top of the node).
 *
 * @example
 * const line: TextLine = { text: 'svc_trainer', fontSize: 13, bold: true, baseline: 24, role: 'name' };
 */
export interface TextLine {
  readonly text: string;
  readonly fontSize: number;
  readonly bold: boolean;
  readonly baseline: number;
  readonly role: 'name' | 'status' | 'detail';
}

/**
 * A step's box: where it is, its status and the lines of text it shows; `detail` is the full
 * text of the last line, which may be cut short.
 *
 * @example
 * layout.nodes[0]; // { step: 'training_data_loader', status: 'cached', x: 12, y: 12, width: 182, height: 66, lines: [...], detail: 'cached from ...' }
 */
export interface NodeLayout extends Box {
  readonly step: string;
  readonly status: NodeStatus;
  readonly lines: readonly TextLine[];
  readonly detail: string;
}

/**
 * An edge's route: the polyline ELK routed, from the border of the source box to the border
 * of the target box, and its label's box.
 *
 * @example
 * layout.edges[0]; // { edge: { from: 'a', output: 'x', to: 'b', input: 'x' }, points: [...], label: { text: 'x', x, y, width, height } }
 */
export interface EdgeLayout {
  readonly edge: RunEdge;
  readonly points: readonly Point[];
  readonly label: Box & { readonly text: string };
}

/**
 * A run laid out: the size of the drawing, a box per step (in the run's topological order)
 * and a route per edge (in the order of the run's edges).
 *
 * @example
 * const layout: RunLayout = await layoutRun(run);
 * layout.nodes.map((n) => n.step); // ['training_data_loader', 'svc_trainer']
 */
export interface RunLayout {
  readonly width: number;
  readonly height: number;
  readonly nodes: readonly NodeLayout[];
  readonly edges: readonly EdgeLayout[];
}

/**
 * Options of {@link layoutRun} and `runToSvg`.
 *
 * @example
 * const options: RunLayoutOptions = { direction: 'DOWN', detailChars: 60, detailLines: 1 };
 */
export interface RunLayoutOptions {
  /** Which way the DAG flows. @default 'RIGHT' */
  readonly direction?: 'RIGHT' | 'DOWN';
  /** The longest line of detail (reason, error, source run) in a node; longer details wrap. @default 38 */
  readonly detailChars?: number;
  /** How many lines of detail a node shows at most; what does not fit ends in `…`. @default 2 */
  readonly detailLines?: number;
}

// sizes

/** @internal */
export const NODE_FONT = { name: 13, status: 12, detail: 11, label: 11 } as const;
const PAD_X = 14;
const PAD_Y = 10;
const MIN_NODE_WIDTH = 120;
const LINE_GAP = { name: 17, status: 17, detail: 15 } as const;
const LABEL_PAD_X = 4;
const LABEL_HEIGHT = 15;

/**
 * An edge's label: the artifact's name (the output's), and the input's when it is another.
 *
 * @example
 * edgeLabel({ from: 'loader', output: 'X_train', to: 'trainer', input: 'X_train' }); // 'X_train'
 * edgeLabel({ from: 'trainer', output: 'output', to: 'evaluator', input: 'model' }); // 'output → model'
 */
export const edgeLabel = (e: RunEdge): string => (e.output === e.input ? e.output : `${e.output} → ${e.input}`);

// layout

let elkInstance: ELK | undefined;
/** elkjs is loaded on first use: importing stepcache stays cheap for those who never draw. */
const elk = async (): Promise<ELK> => {
  if (elkInstance === undefined) {
    const { default: Elk } = await import('elkjs/lib/elk.bundled.js');
    elkInstance = new Elk();
  }
  return elkInstance;
};

const round = (n: number): number => Math.round(n * 10) / 10;

type Mutable = { x: number; y: number };
type Axis = 'x' | 'y';
const other = (axis: Axis): Axis => (axis === 'x' ? 'y' : 'x');
/** The axis a segment runs along, if it is straight. */
const along = (a: Mutable, b: Mutable): Axis | undefined => (a.y === b.y ? 'x' : a.x === b.x ? 'y' : undefined);
const size = (box: Box, axis: Axis): number => (axis === 'x' ? box.width : box.height);

/** Points without repeats, and without middle points of straight runs. */
const simplify = (points: readonly Mutable[]): Mutable[] => {
  const kept: Mutable[] = [];
  for (const q of points) {
    const last = kept[kept.length - 1];
    const prev = kept[kept.length - 2];
    if (last !== undefined && last.x === q.x && last.y === q.y) continue;
    if (prev !== undefined && last !== undefined && ((prev.x === last.x && last.x === q.x) || (prev.y === last.y && last.y === q.y))) kept.pop();
    kept.push(q);
  }
  return kept;
};

/**
 * Orthogonal routes without ELK's occasional small jogs next to a box: when the segment that
 * leaves (or enters) a box is followed (or preceded) by a step of a few pixels, the end on the
 * box slides along the box's side to line up with the rest of the route, provided it stays
 * clear of the box's corners and of the other edges' ends on that box.
 */
const straighten = (routes: readonly (readonly Point[])[], ends: readonly { readonly source: Box; readonly target: Box }[]): Point[][] => {
  const mutable = routes.map((r) => simplify(r.map((q) => ({ x: q.x, y: q.y }))));
  const endsOn = (box: Box, except: number): Mutable[] =>
    mutable.flatMap((r, i) => (i === except ? [] : [ends[i]?.source === box ? r[0] : undefined, ends[i]?.target === box ? r[r.length - 1] : undefined])).filter((q): q is Mutable => q !== undefined);
  mutable.forEach((route, i) => {
    const end = ends[i];
    if (end === undefined) return;
    // [the point on the box, the next point, the one after]: from the start, then from the end
    const tries: [Mutable[], Box][] = [
      [route.slice(0, 3), end.source],
      [route.slice(-3).reverse(), end.target],
    ];
    for (const [[onBox, next, after], box] of tries) {
      if (onBox === undefined || next === undefined || after === undefined || route.length < 4) continue;
      const axis = along(onBox, next);
      if (axis === undefined || along(next, after) !== other(axis)) continue;
      const side = other(axis);
      const shift = after[side] - next[side];
      if (shift === 0 || Math.abs(shift) >= 8) continue;
      const target = after[side];
      const clearOfCorners = target >= box[side] + 10 && target <= box[side] + size(box, side) - 10;
      const clearOfOthers = endsOn(box, i).every((q) => Math.abs(q[side] - target) >= 4 || q[axis] !== onBox[axis]);
      if (clearOfCorners && clearOfOthers) onBox[side] = next[side] = target;
    }
    mutable[i] = simplify(route);
  });
  return mutable;
};

/**
 * Lays a run's DAG out with ELK's layered algorithm: every box sized to fit its text, edges
 * routed orthogonally and ending on the borders of their boxes, every edge label given its
 * measured size and placed by ELK. Coordinates start at the top left corner of the drawing.
 *
 * @example
 * const layout = await layoutRun(run);
 * const loader = layout.nodes.find((n) => n.step === 'training_data_loader');
 * layout.edges[0]?.points[0]; // on the right border of `loader`
 */
export const layoutRun = async (run: RenderableRun, options: RunLayoutOptions = {}): Promise<RunLayout> => {
  const steps = stepsInOrder(run);
  const detailChars = Math.max(8, options.detailChars ?? 38);
  const detailLines = Math.max(0, options.detailLines ?? 2);
  const contents = steps.map((s) => {
    const detail = oneLine(stepDetail(s.record));
    const texts = [
      { text: s.name, fontSize: NODE_FONT.name, bold: true, role: 'name' as const },
      { text: `${STATUS_STYLES[s.status].symbol} ${s.status} · ${stepDuration(s.record)}`, fontSize: NODE_FONT.status, bold: false, role: 'status' as const },
      ...wrap(detail, detailChars, detailLines).map((text) => ({ text, fontSize: NODE_FONT.detail, bold: false, role: 'detail' as const })),
    ];
    return { step: s, detail, texts, width: Math.max(MIN_NODE_WIDTH, Math.ceil(Math.max(...texts.map((t) => textWidth(t.text, t.fontSize, t.bold))) + 2 * PAD_X)) };
  });
  // Every box as tall as the tallest, so the rows read evenly; shorter texts are centred.
  const textHeight = (n: number): number => LINE_GAP.name + LINE_GAP.status + Math.max(0, n - 2) * LINE_GAP.detail;
  const height = 2 * PAD_Y + textHeight(Math.max(2, ...contents.map((c) => c.texts.length)));

  const graph: ElkNode = {
    id: 'run',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': options.direction ?? 'RIGHT',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.padding': '[top=16,left=16,bottom=16,right=16]',
      'elk.spacing.nodeNode': '28',
      'elk.layered.spacing.nodeNodeBetweenLayers': '40',
      'elk.spacing.edgeNode': '14',
      'elk.layered.spacing.edgeNodeBetweenLayers': '14',
      'elk.spacing.edgeEdge': '10',
      'elk.layered.spacing.edgeEdgeBetweenLayers': '10',
      'elk.spacing.edgeLabel': '2',
      'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
      'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
    },
    children: contents.map((c, i) => ({ id: `n${i}`, width: c.width, height })),
    edges: edgesIn(run).map((e, i): ElkExtendedEdge => {
      const text = oneLine(edgeLabel(e));
      return {
        id: `e${i}`,
        sources: [`n${steps.findIndex((s) => s.name === e.from)}`],
        targets: [`n${steps.findIndex((s) => s.name === e.to)}`],
        labels: [{ id: `l${i}`, text, width: Math.ceil(textWidth(text, NODE_FONT.label) + 2 * LABEL_PAD_X), height: LABEL_HEIGHT, layoutOptions: { 'elk.edgeLabels.placement': 'CENTER' } }],
      };
    }),
  };
  const laid = await (await elk()).layout(graph);

  const nodes = contents.map((c, i): NodeLayout => {
    const box = laid.children?.find((n) => n.id === `n${i}`);
    let baseline = PAD_Y + (height - 2 * PAD_Y - textHeight(c.texts.length)) / 2;
    const lines = c.texts.map((t) => {
      baseline += LINE_GAP[t.role];
      return { ...t, baseline: baseline - 4 };
    });
    return { step: c.step.name, status: c.step.status, x: round(box?.x ?? 0), y: round(box?.y ?? 0), width: c.width, height, lines, detail: c.detail };
  });
  const edges = edgesIn(run).map((edge, i): EdgeLayout => {
    const laidEdge = laid.edges?.find((e) => e.id === `e${i}`);
    const points = (laidEdge?.sections ?? []).flatMap((s) => [s.startPoint, ...(s.bendPoints ?? []), s.endPoint]).map((p) => ({ x: round(p.x), y: round(p.y) }));
    const label = laidEdge?.labels?.[0];
    return {
      edge,
      points,
      label: { text: label?.text ?? '', x: round(label?.x ?? 0), y: round(label?.y ?? 0), width: label?.width ?? 0, height: label?.height ?? 0 },
    };
  });
  const boxOf = new Map(nodes.map((node) => [node.step, node]));
  const box = (step: string): Box => boxOf.get(step) ?? { x: 0, y: 0, width: 0, height: 0 };
  const routes = straighten(
    edges.map((e) => e.points),
    edges.map((e) => ({ source: box(e.edge.from), target: box(e.edge.to) })),
  );
  return { width: Math.ceil(laid.width ?? 0), height: Math.ceil(laid.height ?? 0), nodes, edges: edges.map((e, i) => ({ ...e, points: routes[i] ?? e.points })) };
};
