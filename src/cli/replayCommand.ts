// `wecom-dify replay`: a stream's events folded one by one, from the shared Redis, from a running
// service's inspector (`--url`: a service without Redis, the demo) or, offline, from a file that
// `wecom-dify export` wrote. With `--bot`, from any of them, another bot's stream is refused. The
// report itself is replayReport.ts; this is its IO.
import { readFile } from 'node:fs/promises';
import { parseSettings } from '../config.js';
import { fold, isFinished, stateOf } from '../machines/index.js';
import type { StoredEvent } from '../store/port.js';
import { durationFlag, parseCommandArgs } from './args.js';
import { botOf, otherBotProblem, parseExport } from './exportFile.js';
import { InspectorSource, serviceBase } from './inspectorSource.js';
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
      url: { type: 'string' },
      bot: { type: 'string' },
    },
    usage,
  );
  const stuckAfterMs = durationFlag(values.stuck, '--stuck', usage);
  const tuning = stuckAfterMs !== undefined ? { stuckAfterMs } : {};
  if (values.file !== undefined) {
    if (positionals.length > 0) throw new UsageError('give a stream id or --file, not both', usage);
    if (values.url !== undefined) throw new UsageError('give --file or --url, not both', usage);
    return replayFile(values.file, Boolean(values.json), tuning, values.bot, io);
  }
  const [streamId, ...extra] = positionals;
  if (!streamId || extra.length > 0)
    throw new UsageError('give one stream id (or --file <export.json>)', usage);
  if (!isStreamId(streamId)) throw new UsageError(`"${streamId}" is not a stream id`, usage);

  const window = parseSettings(io.env, ['STREAM_WINDOW_SECONDS']);
  if (!window.ok) return reportProblems(io, window.problems);
  const windowMs = window.settings.STREAM_WINDOW_SECONDS * 1000;
  if (values.url !== undefined) {
    if (values.prefix !== undefined)
      throw new UsageError('--prefix names Redis keys; --url reads from the service: give one', usage);
    const base = serviceBase(values.url);
    if (!base) throw new UsageError(`--url must be an http:// or https:// URL, not "${values.url}"`, usage);
    const token = parseSettings(io.env, ['INSPECTOR_TOKEN']);
    if (!token.ok) return reportProblems(io, token.problems);
    const source = new InspectorSource(base, token.settings.INSPECTOR_TOKEN);
    return replayFromService(source, streamId, Boolean(values.json), { windowMs, ...tuning }, values.bot, io);
  }
  return withSharedStore(io, 'replay', values.prefix, async ({ store, prefix }) => {
    const events = await store.read(streamId);
    if (events.length === 0) {
      io.err(`replay: no stream ${streamId} under the prefix "${prefix}": it does not exist, or it expired`);
      return 1;
    }
    if (otherBot(streamId, events, values.bot, io)) return 1;
    const lease = (await store.getLease(streamId)) ?? null;
    const behind = await behindOf(events, async (id) => {
      const loaded = await store.load(id);
      return loaded && { state: stateOf(loaded.view), finished: isFinished(loaded.view) };
    });
    const report = buildReplay(events, {
      lease,
      now: io.now(),
      windowMs,
      ...tuning,
      ...(behind ? { behind } : {}),
    });
    print(report, Boolean(values.json), io);
    return 0;
  });
}

/** Whether `--bot` names another bot than the stream's; if so, it says so on stderr. */
function otherBot(
  streamId: string,
  events: readonly StoredEvent[],
  wanted: string | undefined,
  io: Io,
): boolean {
  const problem = otherBotProblem(streamId, botOf(events), wanted);
  if (problem) io.err(`replay: ${problem}`);
  return problem !== undefined;
}

/** `--url`: the events as the service's inspector reads them from its store; leases on its clock. */
async function replayFromService(
  source: InspectorSource,
  streamId: string,
  json: boolean,
  options: Pick<ReplayOptions, 'windowMs' | 'stuckAfterMs'>,
  /** `--bot`: the bot the stream must be of. */
  bot: string | undefined,
  io: Io,
): Promise<number> {
  const read = await source.events(streamId);
  if (!read.ok) {
    io.err(`replay: ${read.problem}`);
    return 1;
  }
  const { events, lease, now } = read.value;
  if (otherBot(streamId, events, bot, io)) return 1;
  const behind = await behindOf(events, async (id) => {
    const state = await source.state(id);
    if (state.ok) return state.value;
    if (state.missing) return undefined;
    return { state: `unknown (${state.problem})`, finished: false };
  });
  print(buildReplay(events, { lease, now, ...options, ...(behind ? { behind } : {}) }), json, io);
  return 0;
}

/** The state of the stream a queued one waits for: often the whole answer to "why is it stuck". */
async function behindOf(
  events: readonly StoredEvent[],
  stateOfStream: (streamId: string) => Promise<{ state: string; finished: boolean } | undefined>,
): Promise<ReplayOptions['behind']> {
  const streamId = fold(events.map((e) => e.event)).context.queuedBehind;
  if (!streamId) return undefined;
  const found = await stateOfStream(streamId);
  return found ? { streamId, ...found } : { streamId, state: 'gone (expired)', finished: true };
}

/** Offline: no settings and no Redis; the diagnosis is as of the export. */
async function replayFile(
  file: string,
  json: boolean,
  tuning: Pick<ReplayOptions, 'stuckAfterMs'>,
  /** `--bot`: the bot the stream must be of. */
  bot: string | undefined,
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
  if (otherBot(parsed.streamId, parsed.events, bot, io)) return 1;
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
