/**
 * Text helpers of the renderers: escaping for XML and HTML, cutting and wrapping labels, and an
 * estimate of how wide a text is drawn.
 *
 * @packageDocumentation
 */
// escaping

/** Characters XML 1.0 does not allow in a document at all, even escaped. */
const NOT_IN_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Text made safe for XML and HTML content and attribute values: `& < > " '` become entities,
 * and characters XML cannot hold at all become U+FFFD.
 *
 * @example
 * escapeXml('a < b & "c"'); // 'a &lt; b &amp; &quot;c&quot;'
 */
export const escapeXml = (text: string): string =>
  text
    .replace(NOT_IN_XML, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');

/**
 * Text cut to at most `max` characters, ending in `…` when cut.
 * @internal
 */
export const truncate = (text: string, max: number): string => {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, Math.max(0, max - 1)).join('')}…`;
};

/**
 * Text broken at spaces into at most `maxLines` lines of at most `maxChars` characters; a word
 * longer than a line is split, and text that does not fit ends in `…`.
 * @internal
 */
export const wrap = (text: string, maxChars: number, maxLines: number): string[] => {
  const lines: string[] = [];
  let current = '';
  const words = text.split(' ').filter((w) => w !== '');
  for (let i = 0; i < words.length; i++) {
    let word = words[i] ?? '';
    while ([...word].length > maxChars) {
      if (current !== '') {
        lines.push(current);
        current = '';
      }
      lines.push([...word].slice(0, maxChars).join(''));
      word = [...word].slice(maxChars).join('');
    }
    const joined = current === '' ? word : `${current} ${word}`;
    if ([...joined].length <= maxChars) current = joined;
    else {
      lines.push(current);
      current = word;
    }
  }
  if (current !== '') lines.push(current);
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, maxLines);
  const last = kept[maxLines - 1] ?? '';
  kept[maxLines - 1] = [...last].length < maxChars ? `${last}…` : truncate(last, maxChars);
  return kept;
};

// measuring

/*
 * Advance widths (per 1000 units of the font size) of the printable ASCII characters, space to
 * tilde, in DejaVu Sans and DejaVu Sans Bold: the widest of the common sans-serif fonts, so a
 * box measured with them fits its text in Helvetica, Arial or DejaVu Sans alike.
 */
const REGULAR = [
  318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686,
  698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615,
  352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
];
const BOLD = [
  348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762,
  734, 830, 683, 683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678,
  435, 716, 712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
];
/** A few non-ASCII characters the pictures use; anything else counts as a full em. */
const OTHER: Readonly<Record<string, number>> = { '·': 380, '–': 500, '…': 1000, '✓': 838, '↺': 838, '✗': 838, '→': 838, '●': 873 };

/**
 * About how wide a text is drawn, in pixels, at a font size, in a sans-serif font.
 *
 * @example
 * textWidth('svc_trainer', 12);       // ≈ 64
 * textWidth('svc_trainer', 13, true); // ≈ 76
 */
export const textWidth = (text: string, fontSize: number, bold = false): number => {
  const table = bold ? BOLD : REGULAR;
  let units = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    units += (code >= 32 && code < 127 ? table[code - 32] : OTHER[ch]) ?? 1000;
  }
  return (units * fontSize) / 1000;
};
