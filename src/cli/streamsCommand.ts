// `wecom-dify streams`: the recent streams of a deployment, read from its Redis, as a table or JSON.
import { countFlag, durationFlag, parseCommandArgs } from './args.js';
import { type Io, UsageError } from './io.js';
import { withSharedStore } from './settings.js';
import { selectStreams, streamsTable } from './streamsView.js';
import { commandUsage } from './usage.js';

const DEFAULT_LIMIT = 20;
/** With `--user`, `--bot` or `--stuck`, this many recent streams are looked through for the ones to show. */
const SCAN_LIMIT = 1000;

export async function runStreams(args: string[], io: Io): Promise<number> {
  const usage = commandUsage.streams;
  const { values, positionals } = parseCommandArgs(
    args,
    {
      unfinished: { type: 'boolean' },
      stuck: { type: 'string' },
      user: { type: 'string' },
      bot: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      prefix: { type: 'string' },
    },
    usage,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, usage);
  const stuckAfterMs = durationFlag(values.stuck, '--stuck', usage);
  const limit = countFlag(values.limit, '--limit', usage) ?? DEFAULT_LIMIT;

  return withSharedStore(io, 'streams', values.prefix, async ({ store }) => {
    const unfinishedOnly = Boolean(values.unfinished) || stuckAfterMs !== undefined;
    // Filters other than "unfinished" are applied here, so look through more than will be shown.
    const scan =
      values.user !== undefined || values.bot !== undefined || stuckAfterMs !== undefined
        ? Math.max(limit, SCAN_LIMIT)
        : limit;
    const summaries = await store.listStreams({ limit: scan, unfinishedOnly });
    const now = io.now();
    const rows = selectStreams(
      summaries,
      {
        unfinished: unfinishedOnly,
        limit,
        ...(stuckAfterMs !== undefined ? { stuckAfterMs } : {}),
        ...(values.user !== undefined ? { user: values.user } : {}),
        ...(values.bot !== undefined ? { bot: values.bot } : {}),
      },
      now,
    );
    if (values.json) io.out(JSON.stringify(rows, null, 2));
    else for (const line of streamsTable(rows, now)) io.out(line);
    return 0;
  });
}
