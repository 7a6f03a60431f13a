// A reasoning model's thinking, as the operator chooses to show it (a bot's `thinking` setting).
// Shown: WeCom folds `<think>…</think>` in a bubble into a "thinking" block (docs/protocol/wecom.md
// §10.2), so Dify's separate reasoning (`reasoning_chunk`) and an agent's tool calls (`agent_thought`)
// are written into one such block ahead of the answer, closed as soon as the answer's text begins.
// Hidden: the `<think>` sections a model writes into its answer are taken out as they stream (a tag
// may be split across deltas), and the reasoning and tool calls are left out.

const OPEN = '<think>';
const CLOSE = '</think>';

/** Every `<think>…</think>` section (and an unclosed last one) taken out of a whole text. */
export function withoutThinking(text: string): string {
  const filter = new ThinkingFilter();
  return (filter.push(text) + filter.flush()).replace(/^\s+/, '');
}

/** The streaming side of `withoutThinking`: deltas in, the visible text out, a split tag carried over. */
export class ThinkingFilter {
  #inside = false;
  #carry = '';
  /** Right after a section: the blank lines a model puts after `</think>` are not shown either. */
  #afterClose = false;

  push(delta: string): string {
    let text = this.#carry + delta;
    this.#carry = '';
    let out = '';
    while (text !== '') {
      if (this.#inside) {
        const end = text.indexOf(CLOSE);
        if (end < 0) {
          this.#carry = partialTail(text, CLOSE);
          return out;
        }
        text = text.slice(end + CLOSE.length);
        this.#inside = false;
        this.#afterClose = true;
        continue;
      }
      if (this.#afterClose) {
        text = text.replace(/^\s+/, '');
        if (text === '') return out;
        this.#afterClose = false;
      }
      const start = text.indexOf(OPEN);
      if (start < 0) {
        const tail = partialTail(text, OPEN);
        out += text.slice(0, text.length - tail.length);
        this.#carry = tail;
        return out;
      }
      out += text.slice(0, start);
      text = text.slice(start + OPEN.length);
      this.#inside = true;
    }
    return out;
  }

  /** The answer ended: a carried piece that never became a tag is text after all. */
  flush(): string {
    const rest = this.#inside ? '' : this.#carry;
    this.#carry = '';
    return rest;
  }
}

/** The end of `text` that could be the start of `tag` (`<thi` of `<think>`), or ''. */
function partialTail(text: string, tag: string): string {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--)
    if (tag.startsWith(text.slice(text.length - n))) return text.slice(text.length - n);
  return '';
}

/** A tool an agent calls, as the thinking block names it: its label where Dify gives one. */
export function toolLine(tool: string, labels: Record<string, unknown> | undefined): string {
  const names = tool
    .split(';')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      const label = labels?.[t] as { zh_Hans?: string; en_US?: string } | string | undefined;
      if (typeof label === 'string') return label;
      return label?.zh_Hans ?? label?.en_US ?? t;
    });
  return names.length ? `正在使用工具：${names.join('、')}…\n` : '';
}
