/**
 * Pictures of runs: Mermaid text, the ELK layout and its SVG, the text tree, the HTML table,
 * the comparison of two runs and the notebook display, on hand-made records and on real runs.
 */
import { createRunner, silentLogger, StepcacheError, type Runner, type RunRecord, type StepRunRecord } from '../src';
import {
  compareRuns,
  displayRun,
  edgeLabel,
  formatSpeedUp,
  layoutRun,
  runToHtmlTable,
  runToMermaid,
  runToSvg,
  runToTextTree,
  STATUS_STYLES,
  type Box,
  type Point,
  type RenderableRun,
  type RunEdge,
  type RunLayout,
} from '../src/render';
import { escapeXml, textWidth } from '../src/render/format';
import { failingPipeline, pipelineEdges, renderable, renderPipeline } from './fixtures/render/pipelines';
import { findAll, hasClass, parseXml, textOf, type XmlElement } from './fixtures/render/xml';
import { removeDir, tempDir } from './support/fixtures';

// hand-made records

const RUN_ID = '20250101-123456789-00aabcdef';
const EARLIER_RUN = '20250101-120000123-00a0f00d1';

const stepRecord = (name: string, status: StepRunRecord['status'], durationMs: number, extra: Partial<StepRunRecord> = {}): StepRunRecord => ({ name, status, durationMs, ...extra });

const edge = (from: string, output: string, to: string, input = output): RunEdge => ({ from, output, to, input });

const record = (pipeline: string, steps: readonly StepRunRecord[], edges: readonly RunEdge[], extra: Partial<RunRecord> = {}): RenderableRun => ({
  id: RUN_ID,
  pipeline,
  parameters: { epochs: 2 },
  status: 'completed',
  startedAt: '2025-01-01T12:34:56.789Z',
  endedAt: '2025-01-01T12:34:59.303Z',
  durationMs: 2514,
  steps: Object.fromEntries(steps.map((s) => [s.name, s])),
  outputs: {},
  edges,
  ...extra,
});

/** The MNIST walkthrough's second run: importer and normalizer cached, trainer and evaluator executed. */
const mnistRun = record(
  'mnist_pipeline',
  [
    stepRecord('importer_mnist', 'cached', 0.41, { cachedFrom: EARLIER_RUN }),
    stepRecord('normalizer', 'cached', 0.22, { cachedFrom: EARLIER_RUN }),
    stepRecord('trainer', 'executed', 2401, { reason: 'parameter epochs changed (1 -> 2)' }),
    stepRecord('evaluator', 'executed', 101, { reason: 'input model changed (new content from trainer)' }),
  ],
  [
    edge('importer_mnist', 'X_train', 'normalizer'),
    edge('importer_mnist', 'X_test', 'normalizer'),
    edge('normalizer', 'X_train', 'trainer'),
    edge('importer_mnist', 'y_train', 'trainer'),
    edge('normalizer', 'X_test', 'evaluator'),
    edge('importer_mnist', 'y_test', 'evaluator'),
    edge('trainer', 'output', 'evaluator', 'model'),
  ],
);

/** Every status, a step named with `.` and `-`, and text that needs escaping wherever a record may hold anything. */
const HOSTILE_PIPELINE = 'weird <pipeline> & "name"';
const HOSTILE_ERROR = 'Step explode failed: bad <input> & "quotes"\u0001</svg>';
const HOSTILE_REASON = 'upstream step explode did not complete <&>';
const mixedRun = record(
  HOSTILE_PIPELINE,
  [
    stepRecord('load_data', 'executed', 932, { reason: 'it was never cached before' }),
    stepRecord('scale.features-v2', 'cached', 3.6, { cachedFrom: EARLIER_RUN }),
    stepRecord('explode', 'failed', 4, { error: HOSTILE_ERROR }),
    stepRecord('after_explode', 'skipped', 0, { reason: HOSTILE_REASON }),
    stepRecord('side_branch', 'executed', 12, { reason: 'parameter "k" changed (<1> -> <2>)' }),
    stepRecord('end', 'skipped', 0, { reason: HOSTILE_REASON }),
  ],
  [
    edge('load_data', 'features', 'scale.features-v2'),
    edge('scale.features-v2', 'output', 'explode', 'features'),
    edge('explode', 'output', 'after_explode', 'exploded'),
    edge('load_data', 'labels', 'side_branch'),
    edge('after_explode', 'output', 'end', 'count'),
    edge('side_branch', 'output', 'end', 'side'),
  ],
  { status: 'failed', parameters: { note: '<b>&amp;</b>' } },
);

// geometry

const intersects = (a: Box, b: Box): boolean => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

const onBorder = (p: Point, box: Box, tolerance = 1): boolean => {
  const inside = p.x >= box.x - tolerance && p.x <= box.x + box.width + tolerance && p.y >= box.y - tolerance && p.y <= box.y + box.height + tolerance;
  const near = (a: number, b: number) => Math.abs(a - b) <= tolerance;
  return inside && (near(p.x, box.x) || near(p.x, box.x + box.width) || near(p.y, box.y) || near(p.y, box.y + box.height));
};

const pointToBox = (p: Point, box: Box): number => {
  const dx = Math.max(box.x - p.x, 0, p.x - (box.x + box.width));
  const dy = Math.max(box.y - p.y, 0, p.y - (box.y + box.height));
  return Math.hypot(dx, dy);
};

/** The shortest distance between a polyline and a box (sampled along the line every pixel). */
const routeToBox = (points: readonly Point[], box: Box): number => {
  let best = Infinity;
  for (let i = 0; i + 1 < points.length; i++) {
    const a = points[i] as Point;
    const b = points[i + 1] as Point;
    const steps = Math.max(1, Math.ceil(Math.hypot(b.x - a.x, b.y - a.y)));
    for (let k = 0; k <= steps; k++) best = Math.min(best, pointToBox({ x: a.x + ((b.x - a.x) * k) / steps, y: a.y + ((b.y - a.y) * k) / steps }, box));
  }
  return best;
};

/** Checks what a readable layout needs: boxes apart, edges from box to box, labels by their edges and clear of boxes and of each other. */
const expectReadable = (run: RenderableRun, layout: RunLayout): void => {
  expect(layout.nodes.map((n) => n.step).sort()).toEqual(Object.keys(run.steps).sort());
  for (const [i, a] of layout.nodes.entries()) {
    for (const b of layout.nodes.slice(i + 1)) expect({ pair: [a.step, b.step], intersects: intersects(a, b) }).toEqual({ pair: [a.step, b.step], intersects: false });
    // the box fits its text
    for (const line of a.lines) expect(textWidth(line.text, line.fontSize, line.bold)).toBeLessThanOrEqual(a.width - 2 * 12);
    expect(a.x).toBeGreaterThanOrEqual(0);
    expect(a.y).toBeGreaterThanOrEqual(0);
    expect(a.x + a.width).toBeLessThanOrEqual(layout.width);
    expect(a.y + a.height).toBeLessThanOrEqual(layout.height);
  }
  const box = (step: string): Box => {
    const found = layout.nodes.find((n) => n.step === step);
    if (found === undefined) throw new Error(`no box for ${step}`);
    return found;
  };
  expect(layout.edges.map((e) => e.edge)).toEqual(run.edges);
  for (const e of layout.edges) {
    const first = e.points[0] as Point;
    const last = e.points[e.points.length - 1] as Point;
    expect(e.points.length).toBeGreaterThanOrEqual(2);
    expect({ edge: e.edge, starts: onBorder(first, box(e.edge.from)), ends: onBorder(last, box(e.edge.to)) }).toEqual({ edge: e.edge, starts: true, ends: true });
    // orthogonal: every segment is horizontal or vertical
    for (let i = 0; i + 1 < e.points.length; i++) {
      const a = e.points[i] as Point;
      const b = e.points[i + 1] as Point;
      expect(a.x === b.x || a.y === b.y).toBe(true);
    }
    expect(e.label.text).toBe(edgeLabel(e.edge));
    expect(e.label.width).toBeGreaterThanOrEqual(textWidth(e.label.text, 11));
    expect(routeToBox(e.points, e.label)).toBeLessThanOrEqual(6);
    for (const n of layout.nodes) expect({ label: e.label.text, node: n.step, intersects: intersects(e.label, n) }).toEqual({ label: e.label.text, node: n.step, intersects: false });
  }
  for (const [i, a] of layout.edges.entries()) {
    for (const b of layout.edges.slice(i + 1)) expect(intersects(a.label, b.label)).toBe(false);
  }
};

// svg

const svgNodes = (svg: XmlElement): XmlElement[] => findAll(svg, (e) => e.name === 'g' && hasClass(e, 'node'));
const svgEdges = (svg: XmlElement): XmlElement[] => findAll(svg, (e) => e.name === 'g' && hasClass(e, 'edge'));
const rectOf = (e: XmlElement): XmlElement => {
  const rect = e.children.find((c): c is XmlElement => typeof c !== 'string' && c.name === 'rect');
  if (rect === undefined) throw new Error(`no rect in ${e.name}`);
  return rect;
};
const boxOfRect = (rect: XmlElement): Box => ({
  x: Number(rect.attributes['x']),
  y: Number(rect.attributes['y']),
  width: Number(rect.attributes['width']),
  height: Number(rect.attributes['height']),
});

/** Checks an SVG of a run: well-formed, a box per step coloured by status, a path per edge, boxes apart. */
const expectSvgOfRun = (source: string, run: RenderableRun): XmlElement => {
  const svg = parseXml(source);
  expect(svg.name).toBe('svg');
  expect(svg.attributes['xmlns']).toBe('http://www.w3.org/2000/svg');
  const nodes = svgNodes(svg);
  expect(nodes.map((n) => n.attributes['data-step']).sort()).toEqual(Object.keys(run.steps).sort());
  for (const n of nodes) {
    const step = run.steps[n.attributes['data-step'] ?? ''] as StepRunRecord;
    expect(hasClass(n, `status-${step.status}`)).toBe(true);
    expect(rectOf(n).attributes['fill']).toBe(STATUS_STYLES[step.status].fill);
    expect(rectOf(n).attributes['stroke']).toBe(STATUS_STYLES[step.status].stroke);
    expect(textOf(n)).toContain(step.name);
    expect(textOf(n)).toContain(step.status);
  }
  const boxes = nodes.map((n) => boxOfRect(rectOf(n)));
  for (const [i, a] of boxes.entries()) for (const b of boxes.slice(i + 1)) expect(intersects(a, b)).toBe(false);
  const edges = svgEdges(svg);
  expect(edges).toHaveLength(run.edges?.length ?? 0);
  expect(edges.map((e) => ({ from: e.attributes['data-from'], output: e.attributes['data-output'], to: e.attributes['data-to'], input: e.attributes['data-input'] }))).toEqual(run.edges);
  for (const e of edges) {
    const paths = findAll(e, (x) => x.name === 'path');
    expect(paths).toHaveLength(1);
    expect(paths[0]?.attributes['marker-end']).toMatch(/^url\(#.+\)$/);
  }
  const labels = findAll(svg, (e) => e.name === 'g' && hasClass(e, 'edge-label')).map(textOf);
  expect(labels.sort()).toEqual((run.edges ?? []).map(edgeLabel).sort());
  return svg;
};

// real runs

let dir: string;
let runner: Runner;
let first: RenderableRun;
let second: RenderableRun;
let failed: RenderableRun;
let failedId: string;

beforeAll(async () => {
  dir = tempDir('stepcache-render-');
  runner = createRunner({ dir, logger: silentLogger });
  first = renderable(await runner.run(renderPipeline, { epochs: 1 }), renderPipeline, { epochs: 1 });
  second = renderable(await runner.run(renderPipeline, { epochs: 2 }), renderPipeline, { epochs: 2 });
  const error = await runner.run(failingPipeline).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof StepcacheError) || error.run === undefined) throw new Error('expected failing_pipeline to fail with its run');
  failedId = error.run.id;
  failed = renderable(error.run, failingPipeline, {});
});

afterAll(async () => {
  await runner.close();
  removeDir(dir);
});

afterEach(() => jest.restoreAllMocks());

describe('the run record', () => {
  it('a recorded run has the edges of its compiled pipeline, in pipeline order, so it can be drawn from the store alone', async () => {
    const stored = await runner.getRun(failedId);
    expect(stored?.edges).toEqual(pipelineEdges(failingPipeline, {}));
    expect(stored?.edges).toEqual([
      { from: 'load_data', output: 'features', to: 'explode', input: 'features' },
      { from: 'explode', output: 'output', to: 'after_explode', input: 'exploded' },
      { from: 'load_data', output: 'labels', to: 'side_branch', input: 'labels' },
      { from: 'after_explode', output: 'output', to: 'summary', input: 'count' },
      { from: 'side_branch', output: 'output', to: 'summary', input: 'side' },
    ]);
    // drawn from the stored record alone, without the pipeline
    expectSvgOfRun(await runToSvg(stored as RenderableRun), stored as RenderableRun);
  });

  it('the real runs have the statuses the tests rely on', () => {
    const statuses = (run: RenderableRun) => Object.fromEntries(Object.values(run.steps).map((s) => [s.name, s.status]));
    expect(statuses(first)).toEqual({ load_data: 'executed', 'scale.features-v2': 'executed', train_model: 'executed', evaluate: 'executed' });
    expect(statuses(second)).toEqual({ load_data: 'cached', 'scale.features-v2': 'cached', train_model: 'executed', evaluate: 'executed' });
    expect(statuses(failed)).toEqual({ load_data: 'cached', explode: 'failed', after_explode: 'skipped', side_branch: 'executed', summary: 'skipped' });
  });
});

describe('runToMermaid', () => {
  it('has a node per step with its name, status and duration, and an edge per input labelled with the artifact', () => {
    const text = runToMermaid(mnistRun);
    expect(text).toContain('graph LR\n');
    expect(text).toContain('  s_importer_mnist["importer_mnist<br/>↺ cached · 0.41ms<br/>cached from 20250101-120000…f00d1"]');
    expect(text).toContain('  s_trainer["trainer<br/>✓ executed · 2.401s"]');
    for (const e of mnistRun.edges ?? []) {
      expect(text).toContain(`  s_${e.from} -->|"${edgeLabel(e)}"| s_${e.to}\n`);
    }
    expect(text).toContain('  s_trainer -->|"output → model"| s_evaluator');
    expect(text.split('\n').filter((l) => l.includes('-->'))).toHaveLength(7);
    expect(text).toContain('title: "mnist_pipeline · run 20250101-123456…bcdef · completed · 2.514s"');
  });

  it('has a class per status, with the status colours, and puts every step in the class of its status', () => {
    const text = runToMermaid(mixedRun, { direction: 'TD' });
    expect(text).toContain('graph TD\n');
    for (const status of ['executed', 'cached', 'failed', 'skipped'] as const) {
      expect(text).toContain(`  classDef ${status} fill:${STATUS_STYLES[status].fill},stroke:${STATUS_STYLES[status].stroke},color:${STATUS_STYLES[status].text}`);
    }
    expect(text).toContain('  class s_load_data,s_side_branch executed\n');
    expect(text).toContain('  class s_scale_features_v2 cached\n');
    expect(text).toContain('  class s_explode failed\n');
    expect(text).toContain('  class s_after_explode,s_end skipped\n');
  });

  it('makes node ids Mermaid accepts from any step name (dots, dashes, keywords such as end) and escapes labels', () => {
    const text = runToMermaid(mixedRun);
    const ids = [...text.matchAll(/^ {2}(\S+)\["/gm)].map((m) => m[1]);
    expect(ids).toEqual(['s_load_data', 's_scale_features_v2', 's_explode', 's_after_explode', 's_side_branch', 's_end']);
    expect(text).toContain('s_scale_features_v2["scale.features-v2<br/>');
    // the title is a JSON string: quotes and angle brackets cannot end it
    expect(text).toContain(`title: ${JSON.stringify(`${HOSTILE_PIPELINE} · run 20250101-123456…bcdef · failed · 2.514s`)}`);
    // every quoted label is closed on its own line
    for (const line of text.split('\n').filter((l) => l.includes('["'))) expect(line.endsWith('"]')).toBe(true);
  });

  it('draws a real run: every step and every recorded edge', () => {
    const text = runToMermaid(failed);
    for (const name of Object.keys(failed.steps)) expect(text).toContain(`["${name}<br/>`);
    for (const e of failed.edges ?? []) expect(text).toContain(`s_${e.from} -->|"${edgeLabel(e)}"| s_${e.to}`);
    expect(text).toContain('class s_explode failed');
    expect(text).toContain('class s_after_explode,s_summary skipped');
  });
});

describe('layoutRun', () => {
  it('lays the MNIST pipeline out left to right without overlaps, edges from box to box, labels by their edges', async () => {
    const layout = await layoutRun(mnistRun);
    expectReadable(mnistRun, layout);
    const x = (step: string) => layout.nodes.find((n) => n.step === step)?.x ?? NaN;
    expect(x('importer_mnist')).toBeLessThan(x('normalizer'));
    expect(x('normalizer')).toBeLessThan(x('trainer'));
    expect(x('trainer')).toBeLessThan(x('evaluator'));
  });

  it('lays out every status, and real runs, readably; top down too', async () => {
    expectReadable(mixedRun, await layoutRun(mixedRun));
    expectReadable(first, await layoutRun(first));
    expectReadable(failed, await layoutRun(failed));
    const down = await layoutRun(mnistRun, { direction: 'DOWN' });
    expectReadable(mnistRun, down);
    const y = (step: string) => down.nodes.find((n) => n.step === step)?.y ?? NaN;
    expect(y('importer_mnist')).toBeLessThan(y('evaluator'));
  });

  it('shows name, status with duration, and a detail wrapped to at most two lines', async () => {
    const layout = await layoutRun(mnistRun, { detailChars: 20 });
    const evaluator = layout.nodes.find((n) => n.step === 'evaluator');
    expect(evaluator?.lines.map((l) => [l.role, l.text])).toEqual([
      ['name', 'evaluator'],
      ['status', '✓ executed · 0.101s'],
      ['detail', 'input model changed'],
      ['detail', '(new content from…'],
    ]);
    expect(evaluator?.detail).toBe('input model changed (new content from trainer)');
    // every box is as tall as the tallest, and lines go down the box
    expect(new Set(layout.nodes.map((n) => n.height)).size).toBe(1);
    const baselines = evaluator?.lines.map((l) => l.baseline) ?? [];
    expect([...baselines].sort((a, b) => a - b)).toEqual(baselines);
    expect(Math.max(...baselines)).toBeLessThan(evaluator?.height ?? 0);
  });
});

describe('runToSvg', () => {
  it('is well-formed XML with a box per step coloured by status, a path per edge and a label per edge', async () => {
    expectSvgOfRun(await runToSvg(mnistRun), mnistRun);
    expectSvgOfRun(await runToSvg(mixedRun), mixedRun);
    expectSvgOfRun(await runToSvg(second), second);
  });

  it('colours each status with its own fill', () => {
    const fills = ['executed', 'cached', 'failed', 'skipped'].map((s) => STATUS_STYLES[s as 'executed'].fill);
    expect(new Set(fills).size).toBe(4);
  });

  it('has a title with the pipeline, run id, status and total duration, and a legend of every status', async () => {
    const svg = parseXml(await runToSvg(mnistRun));
    const header = findAll(svg, (e) => e.name === 'g' && hasClass(e, 'header'))[0] as XmlElement;
    const text = textOf(header);
    expect(text).toContain('mnist_pipeline');
    expect(text).toContain(`run ${RUN_ID} · completed · 2.514s`);
    expect(text).toContain('parameters: epochs=2');
    const legend = findAll(svg, (e) => e.name === 'g' && hasClass(e, 'legend'))[0] as XmlElement;
    expect(textOf(legend)).toBe('✓ executed↺ cached✗ failed– skipped');
    expect(findAll(legend, (e) => e.name === 'rect').map((r) => r.attributes['fill'])).toEqual([STATUS_STYLES.executed.fill, STATUS_STYLES.cached.fill, STATUS_STYLES.failed.fill, STATUS_STYLES.skipped.fill]);
    // the document's own title, for screen readers and tooltips
    expect(textOf(svg.children.find((c): c is XmlElement => typeof c !== 'string' && c.name === 'title') as XmlElement)).toContain(`mnist_pipeline · run ${RUN_ID}`);
  });

  it('escapes <, & and > in the pipeline name, reasons and errors, and drops characters XML cannot hold', async () => {
    const source = await runToSvg(mixedRun);
    expect(source).not.toContain('<pipeline>');
    expect(source).not.toContain('<input>');
    expect(source).not.toContain('\u0001');
    expect(source).toContain('weird &lt;pipeline&gt; &amp; &quot;name&quot;');
    const svg = parseXml(source);
    expect(textOf(svg)).toContain(HOSTILE_PIPELINE);
    const node = (step: string) => svgNodes(svg).find((n) => n.attributes['data-step'] === step) as XmlElement;
    // the full error in the tooltip, the start of it in the box
    expect(textOf(node('explode'))).toContain('bad <input> & "quotes" </svg>');
    expect(textOf(node('explode'))).toContain('✗ failed · 0.004s');
    expect(textOf(node('after_explode'))).toContain(HOSTILE_REASON);
    expect(textOf(node('after_explode'))).toContain('– skipped · not run');
    expect(textOf(node('scale.features-v2'))).toContain('cached from 20250101-120000…f00d1');
    expect(textOf(svg)).toContain('parameters: note=<b>&amp;</b>');
  });

  it('draws skipped steps dashed, and edges dashed where nothing flowed', async () => {
    const svg = parseXml(await runToSvg(failed));
    const node = (step: string) => svgNodes(svg).find((n) => n.attributes['data-step'] === step) as XmlElement;
    expect(rectOf(node('summary')).attributes['stroke-dasharray']).toBeDefined();
    expect(rectOf(node('load_data')).attributes['stroke-dasharray']).toBeUndefined();
    const path = (from: string, to: string) => findAll(svgEdges(svg).find((e) => e.attributes['data-from'] === from && e.attributes['data-to'] === to) as XmlElement, (e) => e.name === 'path')[0] as XmlElement;
    expect(path('explode', 'after_explode').attributes['stroke-dasharray']).toBeDefined();
    expect(path('load_data', 'explode').attributes['stroke-dasharray']).toBeUndefined();
  });

  it('draws a record without edges (made before edges were kept) as its steps, and says so', async () => {
    const { edges: _, ...withoutEdges } = mnistRun;
    const svg = parseXml(await runToSvg(withoutEdges));
    expect(svgNodes(svg)).toHaveLength(4);
    expect(svgEdges(svg)).toHaveLength(0);
    expect(textOf(svg)).toContain('edges not recorded');
    expect(runToTextTree(withoutEdges)).toContain('edges not recorded');
    expect(runToMermaid(withoutEdges)).toContain('%% edges not recorded');
  });

  it('draws a step that only the edges name (a run still running) as pending', async () => {
    const running = record('p', [stepRecord('a', 'executed', 5)], [edge('a', 'x', 'b')], { status: 'running' });
    const svg = parseXml(await runToSvg(running));
    const pending = svgNodes(svg).find((n) => n.attributes['data-step'] === 'b') as XmlElement;
    expect(hasClass(pending, 'status-pending')).toBe(true);
    expect(rectOf(pending).attributes['fill']).toBe(STATUS_STYLES.pending.fill);
    expect(textOf(findAll(svg, (e) => hasClass(e, 'legend'))[0] as XmlElement)).toContain('pending');
  });
});

describe('runToTextTree', () => {
  it('lists the steps in topological order, each under its parent, with symbols, durations and the run a cached step came from', () => {
    expect(runToTextTree(mnistRun)).toBe(
      [
        `mnist_pipeline · run ${RUN_ID} · completed · 2.514s`,
        '↺ importer_mnist  0.41ms  (cached from 20250101-120000…f00d1)',
        '└─ ↺ normalizer  0.22ms  (cached from 20250101-120000…f00d1)',
        '   └─ ✓ trainer  2.401s  [also after importer_mnist]',
        '      └─ ✓ evaluator  0.101s  [also after normalizer, importer_mnist]',
      ].join('\n'),
    );
  });

  it('branches, with ✗ for a failed step and – for skipped ones, on one line each', () => {
    expect(runToTextTree(mixedRun)).toBe(
      [
        `${HOSTILE_PIPELINE} · run ${RUN_ID} · failed · 2.514s`,
        '✓ load_data  0.932s',
        '├─ ↺ scale.features-v2  0.004s  (cached from 20250101-120000…f00d1)',
        '│  └─ ✗ explode  0.004s  (failed: Step explode failed: bad <input> & "quotes" </svg>)',
        '│     └─ – after_explode  not run  (skipped: upstream step explode did not complete <&>)',
        '└─ ✓ side_branch  0.012s',
        '   └─ – end  not run  (skipped: upstream step explode did not complete <&>)  [also after after_explode]',
      ].join('\n'),
    );
  });

  it('prints every step of a real failed run with its symbol', () => {
    const lines = runToTextTree(failed).split('\n');
    expect(lines).toHaveLength(6);
    const line = (step: string) => lines.find((l) => l.includes(` ${step}  `)) ?? '';
    expect(line('load_data')).toMatch(/^↺ load_data {2}\S+ {2}\(cached from .+\)$/);
    expect(line('explode')).toMatch(/^├─ ✗ explode {2}\S+ {2}\(failed: Step explode failed: bad <input> & "quotes"\)$/);
    expect(line('after_explode')).toMatch(/^│ {2}└─ – after_explode {2}not run/);
    expect(line('side_branch')).toMatch(/^└─ ✓ side_branch {2}\d+\.\d+(s|ms)$/);
    expect(line('summary')).toMatch(/^ {3}└─ – summary {2}not run .*\[also after after_explode\]$/);
  });
});

describe('runToHtmlTable', () => {
  it('is a table with a row per step (name, status, duration, details), every text escaped', () => {
    const html = runToHtmlTable(mixedRun);
    expect(html).not.toContain('<input>');
    const table = parseXml(html);
    expect(table.name).toBe('table');
    const rows = findAll(table, (e) => e.name === 'tr').map((tr) => findAll(tr, (e) => e.name === 'td' || e.name === 'th').map(textOf));
    expect(rows).toEqual([
      ['Step', 'Status', 'Duration', 'Details'],
      ['load_data', '✓ executed', '0.932s', 'it was never cached before'],
      ['scale.features-v2', '↺ cached', '0.004s', `cached from ${EARLIER_RUN}`],
      ['explode', '✗ failed', '0.004s', 'Step explode failed: bad <input> & "quotes"\uFFFD</svg>'],
      ['after_explode', '– skipped', 'not run', HOSTILE_REASON],
      ['side_branch', '✓ executed', '0.012s', 'parameter "k" changed (<1> -> <2>)'],
      ['end', '– skipped', 'not run', HOSTILE_REASON],
    ]);
    expect(textOf(findAll(table, (e) => e.name === 'caption')[0] as XmlElement)).toBe(`${HOSTILE_PIPELINE} · run ${RUN_ID} · failed · 2.514s`);
    expect(findAll(table, (e) => e.name === 'tr' && hasClass(e, 'status-failed'))).toHaveLength(1);
  });
});

describe('compareRuns', () => {
  it('computes the speed-up of the steps run 2 served from the cache, from two real runs, and shows - for re-executed steps', () => {
    const { rows, text, html } = compareRuns(first, second);
    expect(rows.map((r) => [r.step, r.run1Status, r.run2Status])).toEqual([
      ['load_data', 'executed', 'cached'],
      ['scale.features-v2', 'executed', 'cached'],
      ['train_model', 'executed', 'executed'],
      ['evaluate', 'executed', 'executed'],
    ]);
    for (const r of rows) {
      expect(r.run1Seconds).toBe((first.steps[r.step]?.durationMs ?? NaN) / 1000);
      expect(r.run2Seconds).toBe((second.steps[r.step]?.durationMs ?? NaN) / 1000);
      expect(r.run2Seconds).toBeGreaterThan(0);
    }
    const load = rows[0];
    // load_data spends 60 ms when it executes; its lookup is far quicker
    expect(load?.run1Seconds).toBeGreaterThanOrEqual(0.06);
    expect(load?.speedUp).toBe((load?.run1Seconds ?? NaN) / (load?.run2Seconds ?? NaN));
    expect(load?.speedUp).toBeGreaterThan(2);
    expect(rows[1]?.speedUp).toBe((rows[1]?.run1Seconds ?? NaN) / (rows[1]?.run2Seconds ?? NaN));
    expect(rows[2]?.speedUp).toBeUndefined();
    expect(rows[3]?.speedUp).toBeUndefined();

    const lines = text.split('\n');
    expect(lines[0]).toBe('Step               Run1 Execution (s)  Run2 Execution (s)  Speed Increase');
    expect(lines[2]).toBe(`load_data          ${(load?.run1Seconds ?? 0).toFixed(4).padEnd(18)}  ${(load?.run2Seconds ?? 0).toFixed(4).padEnd(18)}  ${formatSpeedUp(load?.speedUp)}`);
    expect(lines[2]).toMatch(/\d+(\.\d)?x$/);
    expect(lines[4]).toMatch(/^train_model .* -$/);
    expect(lines[5]).toMatch(/^evaluate .* -$/);

    const table = parseXml(html);
    const cells = findAll(table, (e) => e.name === 'tr').map((tr) => findAll(tr, (e) => e.name === 'td' || e.name === 'th').map(textOf));
    expect(cells[0]).toEqual(['Step', 'Run1 Execution (s)', 'Run2 Execution (s)', 'Speed Increase']);
    expect(cells.slice(1).map((c) => c[3])).toEqual([formatSpeedUp(load?.speedUp), formatSpeedUp(rows[1]?.speedUp), '-', '-']);
  });

  it('shows - when a step is missing from a run, or was not executed in run 1', () => {
    const a = record('p', [stepRecord('a', 'executed', 1000), stepRecord('b', 'cached', 2), stepRecord('c', 'failed', 5)], []);
    const b = record('p', [stepRecord('a', 'cached', 10), stepRecord('b', 'cached', 1), stepRecord('d', 'executed', 7)], []);
    const { rows, text } = compareRuns(a, b);
    expect(rows).toEqual([
      { step: 'a', run1Seconds: 1, run2Seconds: 0.01, speedUp: 100, run1Status: 'executed', run2Status: 'cached' },
      { step: 'b', run1Seconds: 0.002, run2Seconds: 0.001, speedUp: undefined, run1Status: 'cached', run2Status: 'cached' },
      { step: 'c', run1Seconds: 0.005, run2Seconds: undefined, speedUp: undefined, run1Status: 'failed', run2Status: undefined },
      { step: 'd', run1Seconds: undefined, run2Seconds: 0.007, speedUp: undefined, run1Status: undefined, run2Status: 'executed' },
    ]);
    expect(text.split('\n').slice(2)).toEqual(['a     1.0000              0.0100              100x', 'b     0.0020              0.0010              -', 'c     0.0050              -                   -', 'd     -                   0.0070              -']);
  });

  it('formats speed-ups as whole times from 10 up', () => {
    expect([64.4, 9.96, 2.46, undefined].map(formatSpeedUp)).toEqual(['64x', '10.0x', '2.5x', '-']);
  });
});

describe('displayRun', () => {
  /** Makes `require('tslab')` inside displayRun load `factory`'s module (or throw what it throws). */
  const withTslab = async (factory: () => unknown, body: () => Promise<void>): Promise<void> => {
    jest.resetModules();
    jest.doMock('tslab', factory, { virtual: true });
    try {
      await body();
    } finally {
      jest.dontMock('tslab');
      jest.resetModules();
    }
  };

  it('prints the text tree when tslab cannot be loaded', async () => {
    const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    await withTslab(
      () => {
        throw new Error("Cannot find module 'tslab'");
      },
      () => displayRun(mnistRun),
    );
    expect(write).toHaveBeenCalledTimes(1);
    expect(write).toHaveBeenCalledWith(`${runToTextTree(mnistRun)}\n`);
  });

  it('prints the text tree when tslab is installed but not running a notebook', async () => {
    const html = jest.fn(() => {
      throw new Error('Not ready');
    });
    const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    await withTslab(() => ({ display: { html } }), () => displayRun(mnistRun));
    expect(html).toHaveBeenCalledTimes(1);
    expect(write).toHaveBeenCalledWith(`${runToTextTree(mnistRun)}\n`);
  });

  it('shows the SVG and the table as HTML inside a tslab notebook', async () => {
    const html = jest.fn();
    const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    await withTslab(() => ({ display: { html } }), () => displayRun(mnistRun));
    expect(write).not.toHaveBeenCalled();
    expect(html).toHaveBeenCalledTimes(1);
    const shown = String((html.mock.calls[0] as unknown[] | undefined)?.[0]);
    expect(shown).toContain(await runToSvg(mnistRun));
    expect(shown).toContain(runToHtmlTable(mnistRun));
    expect(parseXml(shown).name).toBe('div');
  });
});

describe('the XML checker the SVG tests use', () => {
  it('rejects what is not well-formed and reads what is', () => {
    for (const bad of ['<a><b></a></b>', '<a x=1/>', '<a>&</a>', '<a>x < y</a>', '<a/><b/>', '<a x="1" x="2"/>', '<a>\u0001</a>', '<a>&foo;</a>', '<a x="<"/>', '<a>', 'text']) {
      expect(() => parseXml(bad)).toThrow();
    }
    const doc = parseXml('<?xml version="1.0"?>\n<a x="&lt;&#38;"><!-- c --><b/>&amp;&#x3e;</a>');
    expect(doc.attributes).toEqual({ x: '<&' });
    expect(doc.children).toEqual([{ name: 'b', attributes: {}, children: [] }, '&>']);
  });
});

describe('format', () => {
  it('escapes and measures text', () => {
    expect(escapeXml(`a<b>&"c"'`)).toBe('a&lt;b&gt;&amp;&quot;c&quot;&#39;');
    expect(textWidth('mm', 10)).toBeGreaterThan(textWidth('ii', 10));
    expect(textWidth('a', 12, true)).toBeGreaterThan(textWidth('a', 12));
  });
});
