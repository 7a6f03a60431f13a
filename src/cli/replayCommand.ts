// `wecom-dify replay`: a stream's events folded one by one, from the shared Redis or, offline, from a
// file that `wecom-dify export` wrote. The report itself is replayReport.ts; this is its IO.
import { readFile } from 'node:fs/promises';
import { parseSettings } from '../config.js';
import { fold, isFinished, stateOf } from '../machines/index.js';
import type { StreamStore } from '../store/port.js';
import { durationFlag, parseCommandArgs } from './args.js';
import { parseExport } from './exportFile.js';
import { type Io, UsageError } from './io.js';
import { buildReplay, formatReplay, type ReplayOptions, type ReplayReport } from './replayReport.js';
import { isStreamId, reportProblems, withSharedStore } from './settings.js';
import { commandUsage } from './usage.js';

export async function runReplay(args: string[], io: Io): Promise<number> {
  const usage = commandUsage.replay;
  const { values, positionals } = parseCommandArgs(
    args,
    {
      file: { type: 'string' },
      json: { type: 'boolean' },
      stuck: { type: 'string' },
      prefix: { type: 'string' },
    },
    usage,
  );
  const stuckAfterMs = durationFlag(values.stuck, '--stuck', usage);
  const tuning = stuckAfterMs !== undefined ? { stuckAfterMs } : {};
  if (values.file !== undefined) {
    if (positionals.length > 0) throw new UsageError('give a stream id or --file, not both', usage);
    return replayFile(values.file, Boolean(values.json), tuning, io);
  }
  const [streamId, ...extra] = positionals;
  if (!streamId || extra.length > 0)
    throw new UsageError('give one stream id (or --file <export.json>)', usage);
  if (!isStreamId(streamId)) throw new UsageError(`"${streamId}" is not a stream id`, usage);

  const window = parseSettings(io.env, ['STREAM_WINDOW_SECONDS']);
  if (!window.ok) return reportProblems(io, window.problems);
  return withSharedStore(io, 'replay', values.prefix, async ({ store, prefix }) => {
    const events = await store.read(streamId);
    if (events.length === 0) {
      io.err(`replay: no stream ${streamId} under the prefix "${prefix}": it does not exist, or it expired`);
      return 1;
    }
    const lease = (await store.getLease(streamId)) ?? null;
    const behind = await behindOf(
      store,
      events.map((e) => e.event),
    );
    const report = buildReplay(events, {
      lease,
      now: io.now(),
      windowMs: window.settings.STREAM_WINDOW_SECONDS * 1000,
      ...tuning,
      ...(behind ? { behind } : {}),
    });
    print(report, Boolean(values.json), io);
    return 0;
  });
}

/** The state of the stream a queued one waits for: often the whole answer to "why is it stuck". */
async function behindOf(
  store: StreamStore,
  events: Parameters<typeof fold>[0],
): Promise<ReplayOptions['behind']> {
  const streamId = fold(events).context.queuedBehind;
  if (!streamId) return undefined;
  const loaded = await store.load(streamId);
  if (!loaded) return { streamId, state: 'gone (expired)', finished: true };
  return { streamId, state: stateOf(loaded.view), finished: isFinished(loaded.view) };
}

/** Offline: no settings and no Redis; the diagnosis is as of the export. */
async function replayFile(
  file: string,
  json: boolean,
  tuning: Pick<ReplayOptions, 'stuckAfterMs'>,
  io: Io,
): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    io.err(`replay: cannot read ${file}: ${(error as Error).message}`);
    return 1;
  }
  const parsed = parseExport(text);
  if (!parsed.ok) {
    io.err(`replay: ${file}: ${parsed.problem}`);
    return 1;
  }
  const report = buildReplay(parsed.events, { lease: parsed.lease, now: parsed.exportedAt, ...tuning });
  const withId: ReplayReport = report.streamId ? report : { ...report, streamId: parsed.streamId };
  if (json) {
    io.out(JSON.stringify({ source: { file, exportedAt: parsed.exportedAt }, ...withId }, null, 2));
  } else {
    io.out(
      `(offline, from ${file}: exported at ${new Date(parsed.exportedAt).toISOString()}; the diagnosis is as of then)`,
    );
    print(withId, false, io);
  }
  return 0;
}

function print(report: ReplayReport, json: boolean, io: Io): void {
  if (json) io.out(JSON.stringify(report, null, 2));
  else for (const line of formatReplay(report)) io.out(line);
}
