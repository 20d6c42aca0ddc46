/**
 * Pictures of runs: the DAG of a recorded run as Mermaid text, an SVG laid out with ELK, a
 * text tree, an HTML table; two runs compared step by step; and a notebook display helper.
 * Every renderer reads the run record alone (with its edges), never the pipeline's code, so a
 * run can be drawn from the store.
 *
 * @packageDocumentation
 */
export { withEdges } from './model';
export type { RunEdge, RenderableRun } from './model';
export { STATUS_STYLES, STEP_STATUSES } from '../format/status';
export type { NodeStatus, StatusStyle } from '../format/status';
export { runToMermaid } from './mermaid';
export type { MermaidOptions } from './mermaid';
export { layoutRun, edgeLabel } from './layout';
export type { RunLayout, RunLayoutOptions, NodeLayout, EdgeLayout, TextLine, Point, Box } from './layout';
export { runToSvg } from './svg';
export type { SvgOptions } from './svg';
export { runToTextTree } from './text';
export { runToHtmlTable } from './html';
export { compareRuns, formatSpeedUp } from './compare';
export type { RunComparison, ComparisonRow } from './compare';
export { displayRun } from './display';
