// The file `wecom-dify export` writes and `replay --file` reads: a stream's events as stored (but for
// the response_url, left out), with its id, its bot, the export's time and the owner's lease then, so
// a bug report replays offline exactly as live. Also the bot check that `--bot` makes in both commands.
import { z } from 'zod';
import { hideResponseUrl } from '../machines/hiddenResponseUrl.js';
import { fold, isKnown, parseEvent } from '../machines/index.js';
import type { Lease, StoredEvent } from '../store/port.js';

const EXPORT_FORMAT = 'wecom-dify/stream-export';

const leaseSchema = z.object({ node: z.string(), until: z.number() });

const exportSchema = z.object({
  format: z.literal(EXPORT_FORMAT),
  version: z.literal(1),
  streamId: z.string().min(1),
  /** The bot the stream answers for, for whoever reads the file; replay folds it from the events. */
  bot: z.string().optional(),
  /** Epoch ms. */
  exportedAt: z.number(),
  /** The owner's live lease at the export, or null. */
  lease: leaseSchema.nullable(),
  events: z.array(z.object({ seq: z.number().int().positive(), id: z.string(), event: z.unknown() })),
});

export type StreamExport = z.infer<typeof exportSchema>;

/** The bot a stream answers for, as its events say (`stream.opened`); undefined when none says. */
export function botOf(events: readonly StoredEvent[]): string | undefined {
  return fold(events.map((e) => e.event)).context.bot || undefined;
}

/**
 * Why `--bot <wanted>` refuses this stream, or undefined when it is that bot's (or no bot was named):
 * an operator who means one bot's stream must not act on another's by a mistyped id.
 */
export function otherBotProblem(
  streamId: string,
  bot: string | undefined,
  wanted: string | undefined,
): string | undefined {
  if (wanted === undefined || bot === wanted) return undefined;
  return bot === undefined
    ? `stream ${streamId} names no bot (it has no stream.opened), not ${wanted}`
    : `stream ${streamId} is bot ${bot}'s, not ${wanted}`;
}

/** The export of a stream; an event this version cannot read is written as it was stored. */
export function toExport(
  streamId: string,
  events: StoredEvent[],
  lease: Lease | undefined,
  now: number,
): StreamExport {
  const bot = botOf(events);
  return {
    format: EXPORT_FORMAT,
    version: 1,
    streamId,
    ...(bot !== undefined ? { bot } : {}),
    exportedAt: now,
    lease: lease ? { node: lease.node, until: lease.until } : null,
    // Exports go into bug reports: the response_url, which can message the user, stays out of them.
    events: events.map(({ seq, id, event }) => ({
      seq,
      id,
      event: hideResponseUrl(isKnown(event) ? event : event.raw),
    })),
  };
}

export type ParsedExport =
  | { ok: true; streamId: string; exportedAt: number; lease: Lease | null; events: StoredEvent[] }
  | { ok: false; problem: string };

/** Parse a file's text; its events are parsed like the store's (an unknown one is kept). */
export function parseExport(text: string): ParsedExport {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not JSON' };
  }
  const parsed = exportSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') || '(root)';
    return { ok: false, problem: `not a wecom-dify stream export: ${where}: ${issue?.message ?? 'invalid'}` };
  }
  const { streamId, exportedAt, lease, events } = parsed.data;
  return {
    ok: true,
    streamId,
    exportedAt,
    lease,
    events: events.map(({ seq, id, event }) => ({ seq, id, event: parseEvent(event) })),
  };
}
