// Command-line parsing with node:util parseArgs, its errors turned into usage errors (exit code 2).
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { parseDuration } from './duration.js';
import { UsageError } from './io.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * A stream's id: 22 url-safe base64 characters, one in 64 of them starting with `-`, which parseArgs
 * would read as short flags (`replay -Kx3…`: "Unknown option '-K'"). No command has short flags.
 */
const DASHED_STREAM_ID = /^-[\w-]{21}$/;

export function parseCommandArgs<O extends Options>(args: string[], options: O, usage: string) {
  args = joinDashedValues(args, options);
  // Such an id is given to parseArgs after a `--`, where it can only be a positional.
  const dashed = args.filter((arg) => DASHED_STREAM_ID.test(arg));
  if (dashed.length > 0) {
    const others = args.filter((arg) => !DASHED_STREAM_ID.test(arg));
    args = others.includes('--') ? [...others, ...dashed] : [...others, '--', ...dashed];
  }
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message, usage);
  }
}

/**
 * `--file -Kx3….json` (an export is named after its stream) as `--file=-Kx3….json`: parseArgs refuses
 * a value starting with `-` after its option as ambiguous, and with no short flags it cannot be one.
 */
function joinDashedValues(args: string[], options: Options): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const next = args[i + 1];
    if (arg === '--') return [...joined, ...args.slice(i)];
    const option = arg.startsWith('--') && !arg.includes('=') ? options[arg.slice(2)] : undefined;
    if (option?.type === 'string' && next !== undefined && /^-[^-]/.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else joined.push(arg);
  }
  return joined;
}

/** A duration flag's value in ms, or a usage error naming the flag. */
export function durationFlag(value: string | undefined, flag: string, usage: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0)
    throw new UsageError(`${flag} takes a duration such as 500ms, 90s, 2m or 1h, not "${value}"`, usage);
  return ms;
}

/** A positive whole-number flag, or a usage error. */
export function countFlag(value: string | undefined, flag: string, usage: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1)
    throw new UsageError(`${flag} takes a positive whole number, not "${value}"`, usage);
  return n;
}
