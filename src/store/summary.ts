// A stream's one-line summary for the inspector and `wecom-dify streams`, shared by every adapter so
// that they list streams the same way.
import { isFinished, type StreamView, stateOf } from '../machines/index.js';
import type { Lease, StreamSummary } from './port.js';

export function summarize(streamId: string, snapshot: StreamView, lease: Lease | undefined): StreamSummary {
  const { context } = snapshot;
  const summary: StreamSummary = {
    streamId,
    bot: context.bot,
    userid: context.userid,
    state: stateOf(snapshot),
    openedAt: context.openedAt,
    lastEventAt: context.lastEventAt,
    answerLength: context.answer.length,
    finished: isFinished(snapshot),
  };
  if (lease) summary.lease = lease;
  return summary;
}

/**
 * Whether a listed stream is one a sweep takes over (`ListOptions.orphanedBefore`): running, nobody
 * holds it, and nothing happened to it since `before`.
 */
export const isOrphan = (summary: StreamSummary, before: number): boolean =>
  !summary.finished && summary.lease === undefined && summary.lastEventAt <= before;

/**
 * The quiet streams in the order a sweep reads them: oldest first or, when there are more of them than
 * one listing takes (`limit`), from a random point of that order round to it again. Streams that no
 * node takes over (those of a bot nobody serves any more) would otherwise fill every listing and hide
 * the orphans after them.
 */
export function sweepOrder<T>(oldestFirst: T[], limit: number): T[] {
  if (oldestFirst.length <= limit) return oldestFirst;
  const start = Math.floor(Math.random() * oldestFirst.length);
  return [...oldestFirst.slice(start), ...oldestFirst.slice(0, start)];
}
