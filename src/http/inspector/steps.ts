// A stream's history, step by step, for the inspector's step control: the events folded one at a
// time through the machine (the same `evolve` every poll uses), with the state and the WeCom bubble
// after each. Pure.
import {
  defaultTexts,
  evolve,
  initialStream,
  isKnown,
  renderContent,
  replyCard,
  type StreamSnapshot,
  stateOf,
  summarizeEvent,
  type Texts,
} from '../../machines/index.js';
import type { StoredEvent } from '../../store/port.js';
import type { Step, StepOutcome } from './api.js';

/** The steps of a stream's events, and the snapshot after the last. */
export function replaySteps(
  events: readonly StoredEvent[],
  texts: Texts = defaultTexts,
): { steps: Step[]; snapshot: StreamSnapshot } {
  const steps: Step[] = [];
  let snapshot: StreamSnapshot = initialStream();
  let content = '';
  let firstAt: number | undefined;
  for (const { seq, id, event } of events) {
    const from = stateOf(snapshot);
    let outcome: StepOutcome | undefined;
    if (!isKnown(event)) outcome = 'unknown';
    else if (!snapshot.can(event)) outcome = 'ignored';
    snapshot = evolve(snapshot, event);
    const state = stateOf(snapshot);
    outcome ??= state === from ? 'stayed' : 'moved';
    const rendered = renderContent(snapshot, texts);
    const keep = commonPrefix(content, rendered.content);
    content = rendered.content;
    firstAt ??= event.at;
    const step: Step = {
      seq,
      id,
      type: event.type,
      summary: summarizeEvent(event),
      outcome,
      from,
      state,
      answerLength: snapshot.context.answer.length,
      bubble: { finish: rendered.finish, keep, add: content.slice(keep) },
    };
    const card = replyCard(snapshot, texts);
    if (card)
      step.card = {
        title: card.main_title.title,
        ...(card.main_title.desc ? { desc: card.main_title.desc } : {}),
        ...(card.sub_title_text ? { sub: card.sub_title_text } : {}),
        buttons: card.button_list.map((b) => b.text),
      };
    const ctx = snapshot.context;
    const images = state === 'completed' && !ctx.bubble ? ctx.attached?.filter((f) => f.shown) : undefined;
    if (images?.length)
      step.images = images.map((f) => ({
        ...(f.name ? { name: f.name } : {}),
        ...(f.bytes !== undefined ? { bytes: f.bytes } : {}),
      }));
    if (event.at !== undefined) {
      step.at = event.at;
      if (firstAt !== undefined) step.offsetMs = event.at - firstAt;
    }
    steps.push(step);
  }
  return { steps, snapshot };
}

/** The bubble's content at step `index`, rebuilt from the steps' differences. */
export function bubbleAt(steps: readonly Step[], index: number): string {
  let content = '';
  for (const step of steps.slice(0, index + 1))
    content = content.slice(0, step.bubble.keep) + step.bubble.add;
  return content;
}

function commonPrefix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  // Never split a surrogate pair: the page rebuilds the text from these pieces.
  if (i > 0 && i < n && isHighSurrogate(a.charCodeAt(i - 1))) i--;
  return i;
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;
