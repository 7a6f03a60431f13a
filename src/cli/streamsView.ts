// What `wecom-dify streams` shows: the store's summaries filtered (unfinished, stuck, one user, one
// bot) and laid out as a table or as JSON rows. Pure: the summaries and the clock come in.
import { defaultStuckSettings, diagnoseStuck, type StuckReason } from '../diagnosis/stuck.js';
import type { StreamSummary } from '../store/port.js';
import { formatDuration } from './duration.js';
import { formatTable } from './table.js';

export interface StreamsFilter {
  unfinished?: boolean;
  /** Unfinished and quiet this long, or unfinished with no live lease. */
  stuckAfterMs?: number;
  user?: string;
  /** One bot's streams (its id: `hr`, or `default` for the one bot of a deployment without a bots file). */
  bot?: string;
  limit: number;
}

/** One stream as `wecom-dify streams` shows it: a row of its table, or an object of its JSON. */
export interface StreamsTableRow {
  streamId: string;
  bot: string;
  userid: string;
  state: string;
  finished: boolean;
  openedAt: number;
  lastEventAt: number;
  ageMs: number;
  /** Since the last event. */
  quietMs: number;
  answerLength: number;
  lease: { node: string; until: number } | null;
  /** Set only when `--stuck` asked, for the streams it found. */
  stuck?: StuckReason;
}

/** Why an unfinished stream counts as stuck under `stuckAfterMs`; undefined when it does not. */
export function stuckReason(
  summary: StreamSummary,
  now: number,
  stuckAfterMs: number,
): StuckReason | undefined {
  return diagnoseStuck(summary, summary.lease, now, { ...defaultStuckSettings, stuckAfterMs }).stuck;
}

export function selectStreams(
  summaries: readonly StreamSummary[],
  filter: StreamsFilter,
  now: number,
): StreamsTableRow[] {
  const rows: StreamsTableRow[] = [];
  for (const s of summaries) {
    if (rows.length >= filter.limit) break;
    if (filter.user !== undefined && s.userid !== filter.user) continue;
    if (filter.bot !== undefined && s.bot !== filter.bot) continue;
    if ((filter.unfinished || filter.stuckAfterMs !== undefined) && s.finished) continue;
    const stuck = filter.stuckAfterMs === undefined ? undefined : stuckReason(s, now, filter.stuckAfterMs);
    if (filter.stuckAfterMs !== undefined && !stuck) continue;
    rows.push({
      streamId: s.streamId,
      bot: s.bot,
      userid: s.userid,
      state: s.state,
      finished: s.finished,
      openedAt: s.openedAt,
      lastEventAt: s.lastEventAt,
      ageMs: now - s.openedAt,
      quietMs: now - s.lastEventAt,
      answerLength: s.answerLength,
      lease: s.lease ? { node: s.lease.node, until: s.lease.until } : null,
      ...(stuck ? { stuck } : {}),
    });
  }
  return rows;
}

export function streamsTable(rows: readonly StreamsTableRow[], now: number): string[] {
  if (rows.length === 0) return ['no streams'];
  const withStuck = rows.some((r) => r.stuck);
  const header = ['STREAM', 'BOT', 'USER', 'STATE', 'AGE', 'LAST EVENT', 'ANSWER', 'OWNER'];
  if (withStuck) header.push('STUCK');
  const cells = rows.map((r) => {
    const owner = r.lease
      ? `${r.lease.node} (${formatDuration(r.lease.until - now)} left)`
      : r.finished
        ? '-'
        : 'none';
    const row = [
      r.streamId,
      r.bot || '-',
      r.userid,
      r.state,
      formatDuration(r.ageMs),
      `${formatDuration(r.quietMs)} ago`,
      String(r.answerLength),
      owner,
    ];
    if (withStuck) row.push(r.stuck === 'no-lease' ? 'owner gone' : r.stuck === 'quiet' ? 'quiet' : '');
    return row;
  });
  return [
    ...formatTable(header, cells, new Set([4, 5, 6])),
    `${rows.length} stream${rows.length === 1 ? '' : 's'}`,
  ];
}
