import fc from 'fast-check';
import { table, type Column } from '../src/cli/format';

/** What a terminal shows of a line: colour codes take no width. */
const visible = (line: string): string => line.replace(/\x1b\[[0-9;]*m/g, '');

describe('table', () => {
  it('aligns columns on the widest cell, right-aligned columns on the right, without trailing spaces', () => {
    const text = table([{ header: 'STEP' }, { header: 'SIZE', align: 'right' }, { header: 'KEY' }], [['loader', '1.2 MB', 'ab12'], ['fit', '30 B', 'cd']]);
    expect(text).toBe('STEP      SIZE  KEY\nloader  1.2 MB  ab12\nfit       30 B  cd\n');
  });

  it('colour codes take no width: a painted cell is padded as its visible text', () => {
    const text = table([{ header: 'STATUS' }, { header: 'N', align: 'right' }], [['\x1b[32mok\x1b[0m', '1'], ['failed', '22']]);
    expect(text.split('\n').map(visible)).toEqual(['STATUS   N', 'ok       1', 'failed  22', '']);
  });

  it('every line puts each cell at its column, whatever the cells (property)', () => {
    const cell = fc.oneof(fc.string({ unit: fc.constantFrom('a', 'b', ' ', 'é') , maxLength: 8 }).map((s) => s.trim() || 'x'), fc.constantFrom('\x1b[31mred\x1b[0m', '\x1b[1;33mwarn\x1b[39m'));
    fc.assert(
      fc.property(fc.array(fc.constantFrom<'left' | 'right'>('left', 'right'), { minLength: 1, maxLength: 5 }), fc.array(fc.array(cell, { minLength: 5, maxLength: 5 }), { maxLength: 12 }), (aligns, rows) => {
        const columns: Column[] = aligns.map((align, i) => ({ header: `H${i}`, align }));
        const cut = rows.map((r) => r.slice(0, columns.length));
        const lines = table(columns, cut).split('\n');
        expect(lines.pop()).toBe('');
        const all = [columns.map((c) => c.header), ...cut];
        const widths = columns.map((_, i) => Math.max(...all.map((r) => visible(r[i] ?? '').length)));
        lines.forEach((line, k) => {
          const shown = visible(line);
          expect(shown).toBe(shown.trimEnd());
          let at = 0;
          columns.forEach((c, i) => {
            const text = visible((all[k] as string[])[i] ?? '');
            const width = widths[i] as number;
            const start = c.align === 'right' ? at + width - text.length : at;
            expect(shown.slice(start, start + text.length)).toBe(text);
            at += width + 2;
          });
        });
      }),
    );
  });
});
