/**
 * Showing a run where it is being looked at: a picture in a tslab notebook, a tree in a terminal.
 *
 * @packageDocumentation
 */
import { runToHtmlTable } from './html';
import type { RenderableRun } from './model';
import { runToSvg } from './svg';
import { runToTextTree } from './text';

/** The part of tslab's API used here (stepcache does not depend on tslab: it is loaded only if present). */
interface Tslab {
  readonly display: { html(html: string): void };
}

const loadTslab = (): Tslab | undefined => {
  try {
    const tslab = require('tslab') as Partial<Tslab> | undefined;
    return typeof tslab?.display?.html === 'function' ? (tslab as Tslab) : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Shows a run: inside a tslab notebook, its SVG picture and its table of steps as HTML output;
 * anywhere else (tslab cannot be loaded, or is installed but not running a notebook, where its
 * display throws), its text tree on standard output.
 *
 * @example
 * // in a tslab notebook cell
 * const run = await runner.run(trainingPipeline);
 * await displayRun(run);
 */
export const displayRun = async (run: RenderableRun): Promise<void> => {
  const tslab = loadTslab();
  if (tslab !== undefined) {
    const html = `<div class="stepcache-run-display">${await runToSvg(run)}\n${runToHtmlTable(run)}</div>`;
    try {
      tslab.display.html(html);
      return;
    } catch {
      // not inside a notebook: tslab's display has nowhere to send the output
    }
  }
  process.stdout.write(`${runToTextTree(run)}\n`);
};
