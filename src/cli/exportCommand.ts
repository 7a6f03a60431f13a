// `wecom-dify export`: a stream's events, its bot, its lease and the time, written to a file for a bug
// report; `wecom-dify replay --file` reads it back offline. With `--bot`, another bot's stream is refused.
import { writeFile } from 'node:fs/promises';
import { parseCommandArgs } from './args.js';
import { otherBotProblem, toExport } from './exportFile.js';
import { type Io, UsageError } from './io.js';
import { isStreamId, withSharedStore } from './settings.js';
import { commandUsage } from './usage.js';

export async function runExport(args: string[], io: Io): Promise<number> {
  const usage = commandUsage.export;
  const { values, positionals } = parseCommandArgs(
    args,
    { out: { type: 'string' }, bot: { type: 'string' }, prefix: { type: 'string' } },
    usage,
  );
  const [streamId, ...extra] = positionals;
  if (!streamId || extra.length > 0) throw new UsageError('give one stream id', usage);
  if (!isStreamId(streamId)) throw new UsageError(`"${streamId}" is not a stream id`, usage);
  const out = values.out ?? `${streamId}.json`;

  return withSharedStore(io, 'export', values.prefix, async ({ store, prefix }) => {
    const events = await store.read(streamId);
    if (events.length === 0) {
      io.err(`export: no stream ${streamId} under the prefix "${prefix}": it does not exist, or it expired`);
      return 1;
    }
    const lease = await store.getLease(streamId);
    const file = toExport(streamId, events, lease, io.now());
    const refused = otherBotProblem(streamId, file.bot, values.bot);
    if (refused) {
      io.err(`export: ${refused}`);
      return 1;
    }
    const text = `${JSON.stringify(file, null, 2)}\n`;
    if (out === '-') {
      io.write(text);
      return 0;
    }
    try {
      await writeFile(out, text);
    } catch (error) {
      io.err(`export: cannot write ${out}: ${(error as Error).message}`);
      return 1;
    }
    const of = file.bot === undefined ? '' : ` (bot ${file.bot})`;
    io.out(`wrote ${events.length} events of stream ${streamId}${of} to ${out}`);
    return 0;
  });
}
