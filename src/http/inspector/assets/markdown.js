// The bubble's content as WeCom shows it (docs/protocol/wecom.md §10): the markdown subset WeCom
// renders, and `<think>` sections as folding "thinking" blocks. The text comes from users, Dify and
// models, so it is never parsed as HTML: this small parser builds elements with createElement and
// puts the text in text nodes, and only http(s) links become links.

const THINK_OPEN = '<think>';
const THINK_CLOSE = '</think>';
/** Deeper than this, quotes and lists show as plain text: a hostile answer cannot exhaust the stack. */
const MAX_DEPTH = 12;
const ESCAPABLE = '\\`*_{}[]()#+-.!|>~<';

/**
 * The content of a bubble as nodes, for a fresh element's children.
 * @param {string} text
 * @returns {DocumentFragment}
 */
export function renderMarkdown(text) {
  const out = document.createDocumentFragment();
  let rest = text.replace(/\r\n?/g, '\n');
  while (rest) {
    const start = rest.indexOf(THINK_OPEN);
    if (start < 0) {
      out.append(...blocks(rest, 0));
      break;
    }
    out.append(...blocks(rest.slice(0, start), 0));
    const body = rest.slice(start + THINK_OPEN.length);
    const end = body.indexOf(THINK_CLOSE);
    out.append(thinking(end < 0 ? body : body.slice(0, end), end >= 0));
    rest = end < 0 ? '' : body.slice(end + THINK_CLOSE.length);
  }
  return out;
}

/**
 * An element with a class and children; strings become text nodes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} className
 * @param {(Node | string)[]} [children]
 * @returns {HTMLElementTagNameMap[K]}
 */
function h(tag, className, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...children);
  return node;
}

/**
 * WeCom folds a closed `<think>` section; an unclosed one keeps its thinking animation running
 * (§10.2), so it is shown open, with an indicator that moves.
 * @param {string} body
 * @param {boolean} closed
 */
function thinking(body, closed) {
  const summary = h('summary', '', ['思考过程']);
  if (!closed) {
    const dots = h('span', 'thinking-dots', [h('i', ''), h('i', ''), h('i', '')]);
    dots.title = '思考中';
    summary.append(dots);
  }
  const details = h('details', closed ? 'think' : 'think thinking', [summary, h('div', 'think-body', blocks(body, 0))]);
  details.open = !closed;
  return details;
}

// ---- blocks, line by line ----

/** @param {string} line */
const isBlank = (line) => line.trim() === '';

/** The width of a line's leading white space, a tab counting as four. @param {string} line */
function indentOf(line) {
  let width = 0;
  for (const c of line) {
    if (c === ' ') width++;
    else if (c === '\t') width += 4 - (width % 4);
    else break;
  }
  return width;
}

/**
 * The line without up to `width` of its leading white space.
 * @param {string} line
 * @param {number} width
 */
function dedent(line, width) {
  let i = 0;
  let taken = 0;
  while (i < line.length && taken < width && (line[i] === ' ' || line[i] === '\t')) {
    taken += line[i] === '\t' ? 4 - (taken % 4) : 1;
    i++;
  }
  return line.slice(i);
}

const FENCE = /^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)/;
const HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^([ \t]*)([-*+]|\d{1,9}[.)])(?:[ \t]+(.*))?$/;
const DELIMITER_ROW = /^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;

/**
 * A list item's marker and text, or undefined when the line is not one.
 * @param {string} line
 */
function itemOf(line) {
  const m = ITEM.exec(line);
  if (!m || RULE.test(line)) return undefined;
  const marker = m[2] ?? '-';
  const indent = indentOf(m[1] ?? '');
  const ordered = /\d/.test(marker);
  const text = m[3] ?? '';
  const start = ordered ? Number.parseInt(marker, 10) : 1;
  return { indent, ordered, start, text, content: line.length - text.length };
}

/**
 * Whether a table starts at line `i`: a row of cells over a row of dashes.
 * @param {string[]} lines
 * @param {number} i
 */
const tableAt = (lines, i) =>
  (lines[i] ?? '').includes('|') && (lines[i + 1] ?? '').includes('|') && DELIMITER_ROW.test(lines[i + 1] ?? '');

/**
 * Whether line `i` starts a block of its own, ending a paragraph.
 * @param {string[]} lines
 * @param {number} i
 */
function startsBlock(lines, i) {
  const line = lines[i] ?? '';
  return (
    FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || !!itemOf(line) || tableAt(lines, i)
  );
}

/**
 * @param {string} text
 * @param {number} depth
 * @returns {Node[]}
 */
function blocks(text, depth) {
  const lines = text.split('\n');
  /** @type {Node[]} */
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? '';
    if (isBlank(line)) {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    const heading = HEADING.exec(line);
    if (fence) i = codeBlock(lines, i, fence[1] ?? '```', fence[2] ?? '', out);
    else if (heading) {
      const level = /** @type {1 | 2 | 3 | 4 | 5 | 6} */ ((heading[1] ?? '#').length);
      out.push(h(`h${level}`, '', inline(heading[2] ?? '', 0, false)));
      i++;
    } else if (RULE.test(line)) {
      out.push(h('hr', ''));
      i++;
    } else if (depth >= MAX_DEPTH) i = paragraph(lines, i, out, () => false);
    else if (QUOTE.test(line)) i = quote(lines, i, depth, out);
    else if (itemOf(line)) i = list(lines, i, depth, out);
    else if (tableAt(lines, i)) i = table(lines, i, out);
    else i = paragraph(lines, i, out, (j) => startsBlock(lines, j));
  }
  return out;
}

/**
 * A fenced code block, as is. One left open runs to the end, as it does while the answer streams.
 * @param {string[]} lines
 * @param {number} i
 * @param {string} marker
 * @param {string} lang
 * @param {Node[]} out
 */
function codeBlock(lines, i, marker, lang, out) {
  const fenceChar = marker[0] ?? '`';
  const closes = (/** @type {string} */ line) => {
    const t = line.trim();
    return t.length >= marker.length && t === fenceChar.repeat(t.length);
  };
  const body = [];
  let j = i + 1;
  while (j < lines.length && !closes(lines[j] ?? '')) body.push(lines[j++] ?? '');
  const code = h('code', '', [body.join('\n')]);
  if (lang) code.dataset.lang = lang;
  out.push(h('pre', '', [code]));
  return j + 1;
}

/**
 * Lines of text up to a blank line or another block; each line break shows as one, as in WeCom.
 * @param {string[]} lines
 * @param {number} i
 * @param {Node[]} out
 * @param {(j: number) => boolean} ends
 */
function paragraph(lines, i, out, ends) {
  const p = h('p', '');
  let j = i;
  while (j < lines.length && !isBlank(lines[j] ?? '') && (j === i || !ends(j))) {
    if (j > i) p.append(h('br', ''));
    p.append(...inline((lines[j] ?? '').trimStart(), 0, false));
    j++;
  }
  out.push(p);
  return j;
}

/**
 * `>` lines, their content parsed again: `>>` is a quote in a quote.
 * @param {string[]} lines
 * @param {number} i
 * @param {number} depth
 * @param {Node[]} out
 */
function quote(lines, i, depth, out) {
  const inner = [];
  let j = i;
  while (j < lines.length && QUOTE.test(lines[j] ?? '')) inner.push((lines[j++] ?? '').replace(QUOTE, ''));
  out.push(h('blockquote', '', blocks(inner.join('\n'), depth + 1)));
  return j;
}

/**
 * A list: items at the first item's column, each with the lines indented under it (a nested list, a
 * code block), parsed again. WeCom nests lists by two spaces.
 * @param {string[]} lines
 * @param {number} i
 * @param {number} depth
 * @param {Node[]} out
 */
function list(lines, i, depth, out) {
  const first = itemOf(lines[i] ?? '');
  if (!first) return i + 1;
  /** @type {string[][]} */
  const items = [];
  /** @type {string[]} */
  let current = [];
  let content = first.content;
  /** @param {string} line */
  const sibling = (line) => {
    const item = itemOf(line);
    return item && item.ordered === first.ordered && item.indent < first.indent + 2 ? item : undefined;
  };
  let j = i;
  while (j < lines.length) {
    const line = lines[j] ?? '';
    const item = sibling(line);
    if (item) {
      current = [item.text];
      items.push(current);
      content = item.content;
      j++;
    } else if (isBlank(line)) {
      let k = j;
      while (k < lines.length && isBlank(lines[k] ?? '')) k++;
      const next = lines[k] ?? '';
      if (k >= lines.length || !(sibling(next) || indentOf(next) > first.indent)) break;
      current.push(...lines.slice(j, k).map(() => ''));
      j = k;
    } else if (indentOf(line) > first.indent) {
      current.push(dedent(line, content));
      j++;
    } else break;
  }
  const node = first.ordered ? h('ol', '') : h('ul', '');
  if (node instanceof HTMLOListElement && first.start !== 1) node.start = first.start;
  for (const item of items) node.append(h('li', '', blocks(item.join('\n'), depth + 1)));
  out.push(node);
  return j;
}

/**
 * The cells of a table row; `\|` is a pipe inside a cell.
 * @param {string} line
 */
function cellsOf(line) {
  let row = line.trim();
  if (row.startsWith('|')) row = row.slice(1);
  if (row.endsWith('|') && !row.endsWith('\\|')) row = row.slice(0, -1);
  return row.split(/(?<!\\)\|/).map((cell) => cell.trim().replaceAll('\\|', '|'));
}

/**
 * A table: its header row, the alignment its row of dashes asks for, and rows while lines have a pipe.
 * @param {string[]} lines
 * @param {number} i
 * @param {Node[]} out
 */
function table(lines, i, out) {
  const aligns = cellsOf(lines[i + 1] ?? '').map((cell) => {
    const left = cell.startsWith(':');
    const right = cell.endsWith(':');
    return left && right ? 'align-center' : right ? 'align-right' : left ? 'align-left' : '';
  });
  /**
   * @param {string} line
   * @param {'th' | 'td'} tag
   */
  const row = (line, tag) => {
    const cells = cellsOf(line);
    return h('tr', '', aligns.map((align, n) => h(tag, align, inline(cells[n] ?? '', 0, false))));
  };
  const body = h('tbody', '');
  let j = i + 2;
  const inTable = (/** @type {string} */ line) => !isBlank(line) && line.includes('|');
  while (j < lines.length && inTable(lines[j] ?? '')) body.append(row(lines[j++] ?? '', 'td'));
  out.push(h('table', '', [h('thead', '', [row(lines[i] ?? '', 'th')]), body]));
  return j;
}

// ---- inline ----

/**
 * The link's address when it may be followed: http and https only, never `javascript:` or a
 * relative path that would point into the inspector.
 * @param {string} address
 */
function safeUrl(address) {
  try {
    const url = new URL(address);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A link that opens apart from the inspector and tells the other site nothing; one that may not be
 * followed keeps its text, its address in the tooltip.
 * @param {string} address
 * @param {(Node | string)[]} label
 */
function link(address, label) {
  const href = safeUrl(address);
  if (!href) {
    const off = h('span', 'link-off', label);
    off.title = address;
    return off;
  }
  const a = h('a', '', label);
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

/** A bare address in text, up to white space, quotes, angle brackets or CJK punctuation. */
const BARE_URL = /https?:\/\/[^\s<>"'`\u3000-\u303f\uff00-\uffef]+/g;

/**
 * Plain text, its bare http(s) addresses as links, as WeCom shows them.
 * @param {string} text
 * @param {boolean} inLink
 * @returns {(Node | string)[]}
 */
function linkify(text, inLink) {
  if (inLink) return [text];
  /** @type {(Node | string)[]} */
  const out = [];
  let last = 0;
  for (const m of text.matchAll(BARE_URL)) {
    let address = m[0];
    // Punctuation after an address ends the sentence, not the address.
    while (/[.,;:!?)\]]$/.test(address) && !(address.endsWith(')') && address.includes('(')))
      address = address.slice(0, -1);
    const at = m.index ?? 0;
    out.push(text.slice(last, at), link(address, [address]));
    last = at + address.length;
  }
  out.push(text.slice(last));
  return out.filter((part) => part !== '');
}

// A v1 tag (§10.1 says v2 bubbles may not colour it): shown coloured, as the answer's author meant.
const FONT = /<font\s+color\s*=\s*(["']?)(info|comment|warning)\1\s*>/iy;
const FONT_END = /<\/font\s*>/gi;

/**
 * Where a code span opened by `size` backticks ends: the next run of exactly that many, or -1.
 * @param {string} text
 * @param {number} from
 * @param {number} size
 */
function closingTicks(text, from, size) {
  for (let k = text.indexOf('`', from); k >= 0; k = text.indexOf('`', k)) {
    let run = k;
    while (text[run] === '`') run++;
    if (run - k === size) return k;
    k = run;
  }
  return -1;
}

/**
 * The end of a `[…]` label that starts at `i`, brackets inside it balanced, or -1.
 * @param {string} text
 * @param {number} i
 */
function labelEnd(text, i) {
  let depth = 0;
  for (let k = i; k < text.length; k++) {
    const c = text[k];
    if (c === '\\') k++;
    else if (c === '[') depth++;
    else if (c === ']' && --depth === 0) return k;
  }
  return -1;
}

/**
 * The `(address "title")` that starts at `i`: the address and where it ends, or undefined.
 * @param {string} text
 * @param {number} i
 */
function destinationAt(text, i) {
  if (text[i] !== '(') return undefined;
  let k = i + 1;
  while (text[k] === ' ') k++;
  let address = '';
  if (text[k] === '<') {
    const close = text.indexOf('>', k);
    if (close < 0) return undefined;
    address = text.slice(k + 1, close);
    k = close + 1;
  } else {
    let parens = 0;
    const from = k;
    for (; k < text.length; k++) {
      const c = text[k];
      if (c === ' ' || (c === ')' && parens === 0)) break;
      if (c === '(') parens++;
      if (c === ')') parens--;
    }
    address = text.slice(from, k);
  }
  const rest = /^\s*(?:"[^"]*"|'[^']*')?\s*\)/.exec(text.slice(k));
  return rest ? { address, end: k + rest[0].length } : undefined;
}

/**
 * Where the emphasis opened at `from` by `delim` closes, or -1: a closing run not after white space,
 * and for `_` not inside a word.
 * @param {string} text
 * @param {number} from
 * @param {string} delim
 */
function closerOf(text, from, delim) {
  const char = delim[0] ?? '*';
  for (let k = text.indexOf(delim, from); k >= 0; k = text.indexOf(delim, k + 1)) {
    if (/\s/.test(text[k - 1] ?? ' ')) continue;
    let run = k;
    while (text[run] === char) run++;
    // A single delimiter closes only on a run of its own length: `*a **b** c*` is one emphasis.
    if (delim.length === 1 && run - k !== 1) {
      k = run - 1;
      continue;
    }
    if (char === '_' && /[\p{L}\p{N}]/u.test(text[k + delim.length] ?? '')) continue;
    return k;
  }
  return -1;
}

/**
 * One line's spans: code, links, bold and italic, WeCom's colours; the rest text.
 * @param {string} text
 * @param {number} depth
 * @param {boolean} inLink
 * @returns {(Node | string)[]}
 */
function inline(text, depth, inLink) {
  /** @type {(Node | string)[]} */
  const out = [];
  let plain = '';
  const flush = () => {
    out.push(...linkify(plain, inLink));
    plain = '';
  };
  /** @param {Node} node */
  const push = (node) => {
    flush();
    out.push(node);
  };
  // Where the search for a closing delimiter found none: none is found from anywhere later either,
  // so a line of a thousand `*` stays linear.
  /** @type {Map<string, number>} */
  const none = new Map();
  /**
   * @param {string} delim
   * @param {number} from
   */
  const closer = (delim, from) => {
    if (from >= (none.get(delim) ?? Infinity)) return -1;
    const k = closerOf(text, from, delim);
    if (k < 0) none.set(delim, from);
    return k;
  };
  const deeper = depth + 1 < MAX_DEPTH;
  let i = 0;
  while (i < text.length) {
    const c = text[i] ?? '';
    if (c === '\\' && ESCAPABLE.includes(text[i + 1] ?? ' ')) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (c === '`') {
      let run = i;
      while (text[run] === '`') run++;
      const close = closingTicks(text, run, run - i);
      if (close < 0) {
        plain += text.slice(i, run);
        i = run;
        continue;
      }
      let code = text.slice(run, close);
      if (code.length > 2 && code.startsWith(' ') && code.endsWith(' ')) code = code.slice(1, -1);
      push(h('code', '', [code]));
      i = close + run - i;
      continue;
    }
    if (deeper && (c === '[' || (c === '!' && text[i + 1] === '['))) {
      const image = c === '!';
      const open = image ? i + 1 : i;
      const end = labelEnd(text, open);
      const dest = end < 0 ? undefined : destinationAt(text, end + 1);
      if (dest) {
        const label = text.slice(open + 1, end);
        // An image is shown as a link to it: the inspector fetches nothing from elsewhere.
        const shown = image ? [`🖼 ${label || '图片'}`] : inline(label, depth + 1, true);
        push(inLink ? h('span', '', shown) : link(dest.address, shown));
        i = dest.end;
        continue;
      }
    }
    if (deeper && c === '<') {
      // WeCom's colours (`<font color="info|comment|warning">`); any other tag is text.
      FONT.lastIndex = i;
      const font = FONT.exec(text);
      FONT_END.lastIndex = FONT.lastIndex;
      const close = font ? FONT_END.exec(text) : null;
      if (font && close) {
        // The regexes' positions first: the call below parses the inside with the same two.
        const inside = text.slice(FONT.lastIndex, close.index);
        const next = FONT_END.lastIndex;
        push(h('span', `font-${(font[2] ?? '').toLowerCase()}`, inline(inside, depth + 1, inLink)));
        i = next;
        continue;
      }
    }
    if (deeper && (c === '*' || c === '_')) {
      let run = i;
      while (text[run] === c) run++;
      const before = text[i - 1] ?? ' ';
      const after = text[run] ?? ' ';
      const opens = !/\s/.test(after) && !(c === '_' && /[\p{L}\p{N}]/u.test(before));
      const size = Math.min(run - i, 3);
      const delim = c.repeat(size === 3 && opens && closer(c.repeat(3), run) >= 0 ? 3 : Math.min(size, 2));
      const end = opens ? closer(delim, i + delim.length) : -1;
      if (end > i + delim.length) {
        const inner = inline(text.slice(i + delim.length, end), depth + 1, inLink);
        push(
          delim.length === 3
            ? h('strong', '', [h('em', '', inner)])
            : delim.length === 2
              ? h('strong', '', inner)
              : h('em', '', inner),
        );
        i = end + delim.length;
        continue;
      }
      plain += text.slice(i, run);
      i = run;
      continue;
    }
    plain += c;
    i++;
  }
  flush();
  return out;
}
