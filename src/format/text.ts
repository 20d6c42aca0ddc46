/**
 * Plain-text helpers shared by every place that shows text: one line of text, a run id short
 * enough for a label.
 *
 * @packageDocumentation
 */

/**
 * Text on one line: runs of control characters (newlines and tabs included), with the spaces
 * around them, become one space; the ends are trimmed.
 *
 * @example
 * oneLine('failed:\n  disk full'); // 'failed: disk full'
 */
export const oneLine = (text: string): string => text.replace(/\s*[\u0000-\u001F\u007F]+\s*/g, ' ').trim();

/**
 * A run id short enough for a label: the runner's ids (`20250101-123456789-00aabcdef`) become
 * their date and time to the second and their last five characters; other ids longer than 16
 * characters keep their first 12 and last 4.
 *
 * @example
 * shortRunId('20250101-123456789-00aabcdef'); // '20250101-123456…bcdef'
 * shortRunId('r1'); // 'r1'
 */
export const shortRunId = (id: string): string => {
  const runner = /^(\d{8}-\d{6})\d{3}-[0-9a-z]{3}[0-9a-f]{6}$/.exec(id);
  if (runner !== null) return `${runner[1] ?? ''}…${id.slice(-5)}`;
  return id.length > 16 ? `${id.slice(0, 12)}…${id.slice(-4)}` : id;
};
