// A WeCom template card as a terminal line: what `chat` and `demo` print under a bubble that carries
// one (a form's buttons, the questions Dify suggests) and for a welcome card. Read defensively: the
// card is the service's output, typed as unknown.

/** `[title · desc] ⟦button⟧ ⟦button⟧`, or undefined for what is not a card. */
export function describeCard(card: unknown): string | undefined {
  if (typeof card !== 'object' || card === null) return undefined;
  const c = card as {
    main_title?: { title?: unknown; desc?: unknown };
    sub_title_text?: unknown;
    button_list?: Array<{ text?: unknown }>;
  };
  const head = [c.main_title?.title, c.main_title?.desc, c.sub_title_text]
    .filter((part): part is string => typeof part === 'string' && part !== '')
    .join(' · ');
  const buttons = (Array.isArray(c.button_list) ? c.button_list : [])
    .map((b) => (typeof b?.text === 'string' ? `⟦${b.text}⟧` : ''))
    .filter(Boolean)
    .join(' ');
  return `[${head}]${buttons ? ` ${buttons}` : ''}`;
}
