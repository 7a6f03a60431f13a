// Plain-text tables for the terminal: columns padded to their widest cell, no trailing spaces.

/** Display width of a cell: CJK and other wide characters take two columns. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    width += isWide(cp) ? 2 : 1;
  }
  return width;
}

function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}

/** The lines of a table; `right` names the columns (by index) aligned to the right, e.g. numbers. */
export function formatTable(
  header: string[],
  rows: string[][],
  right: ReadonlySet<number> = new Set(),
): string[] {
  const widths = header.map((h, i) =>
    Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        const pad = ' '.repeat(Math.max(0, (widths[i] ?? 0) - displayWidth(cell)));
        return right.has(i) ? pad + cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** One line of at most `max` characters: newlines shown as ⏎, the cut marked with …. */
export function oneLine(text: string, max: number, from: 'start' | 'end' = 'start'): string {
  const flat = text.replace(/\r?\n/g, '⏎').replace(/\t/g, ' ');
  const chars = Array.from(flat);
  if (chars.length <= max) return flat;
  return from === 'start'
    ? `${chars.slice(0, max - 1).join('')}…`
    : `…${chars.slice(chars.length - max + 1).join('')}`;
}
