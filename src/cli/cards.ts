// A WeCom template card as a terminal line: what `chat` and `demo` print under a bubble that carries
// one (a form's buttons, the questions Dify suggests) and for a welcome card. Read defensively: the
// card is the service's output, typed as unknown.

/** `[title · desc] ⟦1 button⟧ ⟦2 button⟧` (`/click N` presses one), or undefined for what is not a card. */
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
    .map((b, i) => (typeof b?.text === 'string' ? `⟦${i + 1} ${b.text}⟧` : ''))
    .filter(Boolean)
    .join(' ');
  return `[${head}]${buttons ? ` ${buttons}` : ''}`;
}

/** A card `/click N` can press: its task id, its buttons' keys, and the card as JSON (as it read). */
export interface Pressable {
  taskId: string;
  keys: string[];
  json: string;
}

/** The card's task id and its buttons' keys, for `/click N`; undefined for what is not a card. */
export function pressable(card: unknown): Pressable | undefined {
  if (typeof card !== 'object' || card === null) return undefined;
  const c = card as { task_id?: unknown; button_list?: Array<{ key?: unknown }> };
  if (typeof c.task_id !== 'string' || !Array.isArray(c.button_list)) return undefined;
  return {
    taskId: c.task_id,
    keys: c.button_list.map((b) => (typeof b?.key === 'string' ? b.key : '')),
    json: JSON.stringify(card),
  };
}
