// A conversation in the terminal through a simulator, in either of WeCom's modes. In callback mode each
// question is sent as WeCom sends it, then polled like WeCom polls (about once a second, for at most 6
// minutes: docs/protocol/wecom.md §9.2); on the long connection the question is pushed to the service
// and its answer comes back as frames (§11.7). Either way the bubble is printed as it grows. Shared by
// `wecom-dify chat` and `wecom-dify demo`.
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { bubbleSaysMoreFollows } from '../machines/index.js';
import { describeCard, type Pressable, pressable } from './cards.js';
import type { DeliveryReceiver } from './deliveries.js';
import { formatDuration } from './duration.js';
import { growth } from './growth.js';
import { type Sender, SimulatorError, type WecomSimulator } from './simulator.js';
import { type WecomWsSimulator, WsSimulatorError } from './wecomWsSimulator.js';

/** WeCom polls about once a second (docs/protocol/wecom.md §9.2)... */
export const POLL_EVERY_MS = 1000;
/** ...for at most 6 minutes after the message. */
export const POLL_FOR_MS = 360_000;

interface SessionOptions {
  sender: Sender;
  /** Give up on an answer after this long, as WeCom stops polling (or ends the stream) after 6 minutes. */
  timeoutMs: number;
  write(text: string): void;
  /** A failure, on its own line. */
  fail(line: string): void;
  /** Ends the session: the question in flight is dropped. */
  signal?: AbortSignal;
  /** Told of each answer once it has finished (the demo prints how to replay it). */
  onAnswered?(answered: Answered): void;
}

/** Callback mode: the simulator POSTs the question to the service, then polls. */
export interface PollingChatOptions extends SessionOptions {
  simulator: WecomSimulator;
  /** Between polls. */
  intervalMs: number;
  /** Where the service sends what its bubble cannot show; without it, that is not shown. */
  deliveries?: DeliveryReceiver;
}

/** Long-connection mode: the simulator is WeCom's server, the service subscribed to it pushes frames. */
export interface ConnectionChatOptions extends SessionOptions {
  connection: WecomWsSimulator;
}

export type ChatSessionOptions = PollingChatOptions | ConnectionChatOptions;

export interface Answered {
  streamId: string;
  content: string;
  /** The card the finished bubble carried (callback mode), as it now reads, for `/click N`. */
  card?: Pressable | undefined;
}

const YOU = 'you › ';
const BOT = 'bot › ';
const AGAIN = '\n    ↻ ';
/** A message through response_url: a second bubble from the bot. */
const LATER = 'bot › ';

/** A bubble as printed: only the new end when the next snapshot extends it, else the whole of it again. */
function bubble(write: (text: string) => void): (content: string) => void {
  let shown: string | undefined;
  return (content) => {
    const g = growth(shown, content);
    if (g.kind === 'append') write(g.text);
    else if (g.kind === 'reprint') write(shown === undefined ? g.text : `${AGAIN}${g.text}`);
    shown = content;
  };
}

/** Sends one question and prints its bubble until `finish:true`. Throws a simulator error on a failure. */
async function ask(question: string, o: ChatSessionOptions): Promise<Answered> {
  o.write(BOT);
  try {
    return 'connection' in o ? await askOverConnection(question, o) : await askByPolling(question, o);
  } catch (error) {
    o.write('\n');
    throw error;
  }
}

async function askByPolling(question: string, o: PollingChatOptions): Promise<Answered> {
  const started = Date.now();
  const show = bubble(o.write);
  const delivery = o.deliveries?.next();
  let reply = await o.simulator.sendText(question, o.sender, o.signal, delivery?.url);
  const streamId = reply.stream.id;
  show(reply.stream.content);
  let polls = 0;
  while (!reply.stream.finish) {
    if (Date.now() - started >= o.timeoutMs) {
      throw new SimulatorError(
        'timeout',
        `stream ${streamId} not finished after ${formatDuration(o.timeoutMs)} (${polls} polls): WeCom would stop polling here`,
      );
    }
    await sleep(o.intervalMs, undefined, o.signal ? { signal: o.signal } : {});
    reply = await o.simulator.poll(streamId, o.sender, o.signal);
    polls++;
    show(reply.stream.content);
  }
  o.write(
    `\n      (finished in ${formatDuration(Date.now() - started)}, ${polls} poll${polls === 1 ? '' : 's'}, stream ${streamId})\n`,
  );
  const images = reply.stream.msg_item?.length ?? 0;
  if (images) o.write(`      (${images} image${images === 1 ? '' : 's'} in the bubble)\n`);
  const card = describeCard(reply.template_card);
  if (card) o.write(`      ${card}  (/click N presses one)\n`);
  // The bubble said the rest follows: it comes as a message of its own, as WeCom would show it.
  if (delivery && o.deliveries && bubbleSaysMoreFollows(reply.stream.content)) {
    o.write(`${LATER}(waiting for the rest…)\n`);
    const markdown = await o.deliveries.wait(delivery.code, o.timeoutMs, o.signal);
    o.write(markdown === undefined ? `${LATER}(nothing came)\n` : `${LATER}${markdown}\n`);
  }
  return { streamId, content: reply.stream.content, card: pressable(reply.template_card) };
}

async function askOverConnection(question: string, o: ConnectionChatOptions): Promise<Answered> {
  const started = Date.now();
  const show = bubble(o.write);
  let answered: Answered | undefined;
  let frames = 0;
  let waiting = false;
  for await (const frame of o.connection.ask(question, o.sender, {
    signal: o.signal,
    timeoutMs: o.timeoutMs,
  })) {
    if (frame.kind === 'message') {
      // What the bubble could not show, sent over the connection as a message of its own.
      o.write(`${LATER}${frame.markdown}\n`);
      waiting = false;
      continue;
    }
    frames++;
    show(frame.content);
    if (!frame.finish) continue;
    answered = { streamId: frame.id, content: frame.content };
    o.write(
      `\n      (finished in ${formatDuration(Date.now() - started)}, ${frames} frame${frames === 1 ? '' : 's'}, stream ${frame.id})\n`,
    );
    if (bubbleSaysMoreFollows(frame.content)) {
      o.write(`${LATER}(waiting for the rest…)\n`);
      waiting = true;
    }
  }
  if (!answered) throw new WsSimulatorError('disconnected', 'the answer ended without its finishing frame');
  if (waiting) o.write(`${LATER}(nothing came)\n`);
  return answered;
}

/** Asks each question in turn; 0 when all were answered, 1 at the first failure. */
export async function askAll(questions: readonly string[], o: ChatSessionOptions): Promise<number> {
  const turn = turns(o);
  for (const question of questions) {
    o.write(`${YOU}${question}\n`);
    const outcome = await turn(question);
    if (outcome !== 'answered') return outcome === 'aborted' ? 0 : 1;
  }
  return 0;
}

/**
 * Reads questions from `input`, one a line, until EOF (Ctrl-D), Ctrl-C or the signal. A failure is
 * printed and the next line is read; the exit code says whether any question failed.
 */
export async function converse(
  input: NodeJS.ReadableStream,
  /** The terminal to prompt on, when a person is typing; none when lines are piped in. */
  terminal: NodeJS.WritableStream | undefined,
  o: ChatSessionOptions,
): Promise<number> {
  if (o.signal?.aborted) return 0;
  const rl = createInterface({
    input,
    ...(terminal ? { output: terminal, terminal: true } : { terminal: false }),
  });
  // EOF lets the question in flight finish; Ctrl-C (which a terminal hands to readline, not to the
  // process) and the caller's signal drop it.
  const interrupt = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, interrupt.signal]) : interrupt.signal;
  const close = () => {
    interrupt.abort();
    rl.close();
  };
  rl.on('SIGINT', close);
  o.signal?.addEventListener('abort', close, { once: true });
  const session = { ...o, signal };
  rl.setPrompt(YOU);
  let failed = false;
  const turn = turns(session);
  try {
    if (terminal) rl.prompt();
    for await (const raw of rl) {
      const question = raw.trim();
      if (question !== '') {
        // A line piped in is not echoed by anyone: show it, so the transcript reads as a chat.
        if (!terminal) o.write(`${YOU}${question}\n`);
        const outcome = await turn(question);
        if (outcome === 'aborted') break;
        if (outcome === 'failed') failed = true;
      }
      if (terminal) rl.prompt();
    }
  } finally {
    o.signal?.removeEventListener('abort', close);
    rl.close();
  }
  if (terminal) o.write('\n');
  return failed ? 1 : 0;
}

/** One line after another: a question, or `/click N` on the last answer's card. */
function turns(o: ChatSessionOptions): (line: string) => Promise<'answered' | 'failed' | 'aborted'> {
  let last: Answered | undefined;
  return (line) =>
    CLICK.test(line)
      ? press(line, last, o, (card) => {
          // The card as it now reads: its buttons are the ones the next /click presses.
          if (last) last = { ...last, card };
        })
      : attempt(line, o, (answered) => {
          last = answered;
        });
}

/** `/click N`: press button N of the last answer's card. */
const CLICK = /^\/click\s+(\d{1,2})$/i;

/**
 * Presses a button of the last answer's card as WeCom sends the click, prints the card's new look,
 * and then what the click asked for, as the message the service sends through response_url.
 */
async function press(
  line: string,
  last: Answered | undefined,
  o: ChatSessionOptions,
  onCard: (card: Answered['card']) => void,
): Promise<'answered' | 'failed' | 'aborted'> {
  const n = Number(CLICK.exec(line)?.[1]);
  const key = last?.card?.keys[n - 1];
  if ('connection' in o || !last?.card || !key) {
    o.fail(
      'connection' in o
        ? 'chat: /click works in callback mode'
        : `chat: no button ${n} on the last answer's card`,
    );
    return 'failed';
  }
  try {
    const delivery = o.deliveries?.next();
    const reply = (await o.simulator.click(
      { taskId: last.card.taskId, key },
      o.sender,
      delivery?.url,
      o.signal,
    )) as {
      template_card?: unknown;
    };
    const card = describeCard(reply?.template_card);
    o.write(`${BOT}${card ? `(the card now reads) ${card}` : '(the card is left as it was)'}\n`);
    const now = pressable(reply?.template_card);
    // A click that changed nothing (a form answered already) asks for nothing: no message follows.
    const changed = now !== undefined && now.json !== last.card.json;
    onCard(now ?? last.card);
    if (!changed) {
      o.write(`${LATER}(nothing follows this click)\n`);
      return 'answered';
    }
    if (delivery && o.deliveries) {
      const markdown = await o.deliveries.wait(delivery.code, o.timeoutMs, o.signal);
      o.write(markdown === undefined ? `${LATER}(nothing came)\n` : `${LATER}${markdown}\n`);
    }
    return 'answered';
  } catch (error) {
    if (o.signal?.aborted) return 'aborted';
    if (error instanceof SimulatorError) {
      o.fail(`chat: ${error.message}`);
      return 'failed';
    }
    throw error;
  }
}

async function attempt(
  question: string,
  o: ChatSessionOptions,
  onAnswered?: (answered: Answered) => void,
): Promise<'answered' | 'failed' | 'aborted'> {
  try {
    const answered = await ask(question, o);
    o.onAnswered?.(answered);
    onAnswered?.(answered);
    return 'answered';
  } catch (error) {
    if (o.signal?.aborted) return 'aborted';
    if (error instanceof SimulatorError || error instanceof WsSimulatorError) {
      o.fail(`chat: ${error.message}`);
      return 'failed';
    }
    throw error;
  }
}
