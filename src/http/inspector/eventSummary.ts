// One short line per event for the inspector's timeline: what an operator needs to read a stream's
// history at a glance. A type this table does not name yet is shown by its fields.
import { isKnown, type ReadEvent, type StreamEvent } from '../../machines/index.js';

const MAX = 80;

/** A text cut to `max` characters, quoted, with its line breaks shown as ⏎. */
export function quote(text: string, max = MAX): string {
  const flat = text.replace(/\r?\n/g, '⏎');
  const chars = Array.from(flat);
  return JSON.stringify(chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : flat);
}

export function summarizeEvent(event: ReadEvent): string {
  if (!isKnown(event)) return `unknown: ${event.problem}`;
  return summarizeKnown(event);
}

function summarizeKnown(e: StreamEvent): string {
  switch (e.type) {
    case 'stream.opened':
      return `${e.userid}${e.chatid ? ` in group ${e.chatid}` : ''} asked ${quote(e.query, 60)}${e.fresh ? ' (new conversation)' : ''}${e.node ? ` · node ${e.node}` : ''}`;
    case 'stream.queued':
      return `waits behind ${e.behind}`;
    case 'stream.dequeued':
      return 'its turn came';
    case 'command.handled':
      return `${e.command} → ${quote(e.text, 50)}`;
    case 'auth.granted':
      return `as ${e.user.id}${e.user.name ? ` (${e.user.name})` : ''}`;
    case 'auth.denied':
      return e.reason;
    case 'dify.started':
      return [
        e.conversationId && `conversation ${e.conversationId}`,
        e.messageId && `message ${e.messageId}`,
        e.taskId && `task ${e.taskId}`,
      ]
        .filter(Boolean)
        .join(' · ');
    case 'answer.delta':
      return `+${e.text.length} ${quote(e.text, 50)}`;
    case 'answer.replaced':
      return `${e.text.length} chars ${quote(e.text, 50)}`;
    case 'answer.completed': {
      const tokens = e.usage?.total_tokens;
      return typeof tokens === 'number' ? `${tokens} tokens` : '';
    }
    case 'answer.failed':
      return `${e.code}: ${quote(e.message, 60)}`;
    case 'stream.taken_over':
      return `by ${e.node}${e.previousNode ? ` from ${e.previousNode}` : ''} (attempt ${e.attempt})`;
    case 'stream.released':
      return `by ${e.node}`;
    case 'bubble.closed':
      return `${e.reason}${e.shown === undefined ? '' : `, showing ${e.shown} chars`}`;
    case 'delivery.sent':
      return `${e.bytes} bytes by response_url`;
    case 'delivery.failed':
      return quote(e.message, 60);
    default:
      return fieldsOf(e);
  }
}

/** `name=value …` of an event's own fields, cut short. */
function fieldsOf(event: object): string {
  const line = Object.entries(event)
    .filter(([key]) => key !== 'type' && key !== 'at')
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
    .join(' ');
  const chars = Array.from(line);
  return chars.length > MAX ? `${chars.slice(0, MAX - 1).join('')}…` : line;
}
