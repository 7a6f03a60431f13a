// What a command gets from its process: the settings' source, the terminal, and the clock. Commands
// return an exit code (0 done, 1 failed, 2 usage or settings) and never call process.exit themselves.

export interface Io {
  /** The environment with `.env` under it (config.readEnv); read through parseSettings only. */
  env: Record<string, string | undefined>;
  stdin: NodeJS.ReadableStream;
  /** The streams behind `write` and `err`, for what needs a stream: readline's prompt, a logger. */
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Whether a person is typing: stdin and stdout are both a terminal. */
  interactive: boolean;
  /** Raw text to standard output (an answer growing needs no newline). */
  write(text: string): void;
  /** A line to standard output. */
  out(line: string): void;
  /** A line to standard error, as `wecom-dify: <line>`. */
  err(line: string): void;
  now(): number;
}

/** A command line that does not fit the command: shown with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}
