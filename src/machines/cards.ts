// WeCom template cards an answer carries (docs/protocol/wecom.md §5.3, §5.4): the buttons of a form a
// Dify run paused on (human input), and the questions Dify suggests after an answer. A card's
// `task_id` names the stream and what the card is for, so that a click (`template_card_event`) finds
// its stream on any node; a button's `key` names what it stands for. Pure: the owner and the click's
// handler ask these functions what to send.
import type { StreamContext } from './streamMachine.js';
import { defaultTexts, type Texts } from './texts.js';

/** A WeCom template card, as much of it as these cards use. */
export interface TemplateCard {
  card_type: 'button_interaction';
  task_id: string;
  main_title: { title: string; desc?: string };
  sub_title_text?: string;
  button_list: Array<{ text: string; style: number; key: string }>;
}

/**
 * What a card is for: a form's buttons, the questions suggested after an answer, or those of the
 * welcome (whose task id names no stream: its buttons' keys hold the questions).
 */
export type CardKind = 'input' | 'suggested' | 'welcome';

const prefixes: Record<CardKind, string> = { input: 'in_', suggested: 'sq_', welcome: 'wc_' };

/** WeCom's limits: at most 6 buttons; a task id of digits, letters and `_-@`, at most 128 bytes. */
export const MAX_BUTTONS = 6;
const TASK_ID = /^[A-Za-z0-9_\-@]{1,128}$/;

/** The task id of a stream's card of this kind. */
export const cardTaskId = (kind: CardKind, streamId: string): string => `${prefixes[kind]}${streamId}`;

/** The card a task id names: its kind and its stream; undefined for a task id no card of ours has. */
export function cardOfTask(taskId: string): { kind: CardKind; streamId: string } | undefined {
  if (!TASK_ID.test(taskId)) return undefined;
  for (const [kind, prefix] of Object.entries(prefixes) as Array<[CardKind, string]>)
    if (taskId.startsWith(prefix) && taskId.length > prefix.length)
      return { kind, streamId: taskId.slice(prefix.length) };
  return undefined;
}

/** Dify's button styles as WeCom's (1 blue, 2 grey, 3 red, 4 plain... as WeCom draws them). */
const styles: Record<string, number> = { primary: 1, default: 2, accent: 3, ghost: 4 };

/** A label within what a button shows well (WeCom suggests 10 characters; more is cut with "…"). */
const label = (text: string, max = 16): string => {
  const chars = [...text.trim()];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : chars.join('');
};

/** A text with its `{name}` places filled. */
export const fill = (text: string, values: Record<string, string>): string =>
  text.replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole);

/** Time as a user in China reads it, on the card: "12-01 18:30". */
function shortTime(ms: number): string {
  const d = new Date(ms + 8 * 3600_000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

/**
 * The card of the form a stream waits on: its title, its deadline, a button per action. After a
 * choice (or past the deadline) the same card says what happened and keeps one inert button, so the
 * user sees the choice and who made it.
 */
export function inputCard(ctx: StreamContext, texts: Texts = defaultTexts): TemplateCard | undefined {
  const input = ctx.input;
  if (!input) return undefined;
  const { form, outcome } = input;
  const title = label(form.title || texts.inputTitle, 26);
  const task_id = cardTaskId('input', ctx.streamId);
  if (outcome?.type === 'given')
    return {
      card_type: 'button_interaction',
      task_id,
      main_title: {
        title,
        desc: fill(texts.inputChosen, { by: label(outcome.by, 12), action: label(outcome.actionText, 12) }),
      },
      button_list: [{ text: label(outcome.actionText), style: 2, key: 'done' }],
    };
  if (outcome?.type === 'expired')
    return {
      card_type: 'button_interaction',
      task_id,
      main_title: { title, desc: texts.inputExpired },
      button_list: [{ text: texts.inputExpiredButton, style: 2, key: 'done' }],
    };
  return {
    card_type: 'button_interaction',
    task_id,
    main_title: {
      title,
      ...(form.expiresAt ? { desc: fill(texts.inputDeadline, { time: shortTime(form.expiresAt) }) } : {}),
    },
    sub_title_text: texts.inputHint,
    button_list: form.actions.slice(0, MAX_BUTTONS).map((a) => ({
      text: label(a.title),
      style: styles[a.style ?? ''] ?? 1,
      key: `in:${a.id}`,
    })),
  };
}

/** The action a form button's key names. */
export const actionOfKey = (key: string): string | undefined =>
  key.startsWith('in:') && key.length > 3 ? key.slice(3) : undefined;

/**
 * The card of the questions Dify suggests after an answer: a button each (WeCom shows up to 6). After
 * a click it says which was asked, and keeps its buttons: another may be asked too.
 */
export function suggestedCard(
  ctx: StreamContext,
  texts: Texts = defaultTexts,
  asked?: string,
): TemplateCard | undefined {
  const questions = ctx.suggested ?? [];
  if (questions.length === 0) return undefined;
  return {
    card_type: 'button_interaction',
    task_id: cardTaskId('suggested', ctx.streamId),
    main_title: { title: texts.suggestedTitle },
    ...(asked === undefined
      ? {}
      : { sub_title_text: fill(texts.suggestedAsked, { question: label(asked, 40) }) }),
    button_list: questions
      .slice(0, MAX_BUTTONS)
      .map((q, i) => ({ text: label(q, 20), style: 2, key: `sq:${i}` })),
  };
}

/**
 * The welcome's card: the opening statement (its first line the title, the rest under it), and a
 * button per suggested question whose key holds the question itself: nothing of the card is kept, so
 * a click on any node reads what it asks from the key. `id` makes the task id (one per card sent).
 */
export function welcomeCard(
  title: string,
  under: string,
  questions: readonly string[],
  id: string,
): TemplateCard {
  return {
    card_type: 'button_interaction',
    task_id: cardTaskId('welcome', id),
    main_title: { title },
    ...(under ? { sub_title_text: under } : {}),
    button_list: questions
      .slice(0, MAX_BUTTONS)
      .map((q) => ({ text: label(q, 20), style: 2, key: `wq:${[...q].slice(0, 200).join('')}` })),
  };
}

/** The question a welcome card's button asks (its key holds it). */
export const welcomeQuestionOfKey = (key: string): string | undefined =>
  key.startsWith('wq:') && key.trim().length > 3 ? key.slice(3).trim() : undefined;

/** The suggested question a button's key names. */
export function suggestionOfKey(ctx: StreamContext, key: string): string | undefined {
  const match = /^sq:(\d{1,2})$/.exec(key);
  return match ? ctx.suggested?.[Number(match[1])] : undefined;
}
