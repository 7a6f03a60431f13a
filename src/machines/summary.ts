// One short line per event: what an operator reads in `wecom-dify replay` and in the inspector's
// timeline to follow a stream's history at a glance. A type this table does not name yet is shown by
// its fields, and an event that could not be read says why (it is kept, not folded).
import { isKnown, type ReadEvent, type StreamEvent } from './events.js';

const MAX = 80;

/** A text cut to `max` characters, quoted, with its line breaks shown as ⏎. */
export function quote(text: string, max = MAX): string {
  const flat = text.replace(/\r?\n/g, '⏎');
  const chars = Array.from(flat);
  return JSON.stringify(chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : flat);
}

export function summarizeEvent(event: ReadEvent): string {
  if (!isKnown(event)) return `unknown: ${event.problem} (kept, not folded)`;
  return summarizeKnown(event);
}

function summarizeKnown(e: StreamEvent): string {
  switch (e.type) {
    case 'stream.opened': {
      const where = e.chattype === 'group' ? ` in group ${e.chatid ?? '?'}` : '';
      const attached = e.attachments?.length ?? 0;
      const extras = [
        e.fresh ? 'new conversation' : '',
        attached ? `${attached} attachment${attached === 1 ? '' : 's'}` : '',
        e.resume ? `answers the form of ${e.resume.of} with ${quote(e.resume.actionText, 20)}` : '',
        e.apart ? 'sent as a message' : '',
        e.node ? `node ${e.node}` : '',
      ].filter(Boolean);
      return `${e.userid}${where} asked ${quote(e.query, 60)}${extras.length ? ` · ${extras.join(' · ')}` : ''}`;
    }
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
    case 'files.uploaded':
      return e.files.map((f) => `${f.type}${f.name ? ` ${quote(f.name, 30)}` : ''}`).join(', ') || 'none';
    case 'dify.started':
      return (
        [
          e.conversationId && `conversation ${e.conversationId}`,
          e.messageId && `message ${e.messageId}`,
          e.taskId && `task ${e.taskId}`,
          e.workflowRunId && `run ${e.workflowRunId}`,
        ]
          .filter(Boolean)
          .join(' · ') || 'no ids'
      );
    case 'answer.delta':
      return quote(e.text, 50);
    case 'answer.replaced':
      return `now ${e.text.length} chars ${quote(e.text, 50)}`;
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
    case 'feedback.given':
      return `${e.rating ?? 'withdrawn'} by ${e.by}${e.forwarded ? ', passed on to Dify' : `, not passed on${e.problem ? `: ${quote(e.problem, 40)}` : ''}`}`;
    case 'answer.attached': {
      const shown = e.files.filter((f) => f.shown);
      const named = e.files.filter((f) => !f.shown);
      return [
        shown.length
          ? `shows ${shown.length} image${shown.length === 1 ? '' : 's'} (${shown.map((f) => `${f.bytes ?? '?'} B`).join(', ')})`
          : '',
        named.length
          ? `names ${named.map((f) => `${f.type}${f.name ? ` ${quote(f.name, 20)}` : ''}${f.reason ? ` (${f.reason})` : ''}`).join(', ')}`
          : '',
      ]
        .filter(Boolean)
        .join(' · ');
    }
    case 'answer.suggested':
      return `suggests ${e.questions.map((q) => quote(q, 24)).join(', ')}`;
    case 'input.required': {
      const f = e.form;
      const until = f.expiresAt === undefined ? '' : ` until ${new Date(f.expiresAt).toISOString()}`;
      return `waits for a person: ${quote(f.title, 20)} [${f.actions.map((a) => a.title).join(' / ')}]${until}`;
    }
    case 'input.given':
      return `${e.by} chose ${quote(e.actionText, 20)} · answered in ${e.answeredIn}`;
    case 'input.expired':
      return `the form expired${e.by ? `: ${e.by} clicked too late` : ''}`;
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
