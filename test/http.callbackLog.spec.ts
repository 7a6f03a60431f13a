// The callback's log line, with the route's own parts and a stand-in runner: a message and anything
// refused are lines at `info`, a poll answered as usual is a line at `debug` only (WeCom sends one a
// second for every answer), a slow poll is at `info` again. Every poll is counted and timed either way.
import * as official from '@wecom/crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  answerCallback,
  type CallbackBot,
  type CallbackDeps,
  queryOf,
  SLOW_POLL_SECONDS,
} from '../src/http/callback.js';
import { CallbackClock } from '../src/http/freshness.js';
import { createLogger } from '../src/log.js';
import type { Metrics } from '../src/metrics.js';
import type { Runner } from '../src/runner/runner.js';
import { WecomCrypto } from '../src/wecom/crypto.js';
import { logLines } from './support/logLines.js';

const TOKEN = 'QDG6eK';
const KEY = 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C';
const STREAM_ID = 'stream-of-the-answer';

type Line = Record<string, unknown>;

function capture(level: string): { lines: Line[]; logger: ReturnType<typeof createLogger> } {
  const { lines, sink } = logLines<Line>();
  return { lines, logger: createLogger(level, sink) };
}

/** A callback as WeCom sends it, encrypted and signed by the official library. */
function callback(message: object, signature?: string): { url: string; body: Buffer } {
  const encrypted = official.encrypt(KEY, JSON.stringify(message), '');
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = 'n0nce';
  const msg_signature = signature ?? official.getSignature(TOKEN, timestamp, nonce, encrypted);
  const query = new URLSearchParams({ msg_signature, timestamp, nonce });
  return { url: `/wecom/callback?${query}`, body: Buffer.from(JSON.stringify({ encrypt: encrypted })) };
}

const common = { msgid: 'm-1', aibotid: 'BOT_TEST', chattype: 'single', from: { userid: 'erin' } };
const poll = { ...common, msgtype: 'stream', stream: { id: STREAM_ID } };
const text = { ...common, msgtype: 'text', text: { content: '你好' } };

function deps(onPoll: () => void = () => {}) {
  const bot: CallbackBot = {
    id: 'default',
    crypto: new WecomCrypto({ token: TOKEN, encodingAESKey: KEY }),
    welcome: async () => ({}),
  };
  const observePoll = vi.fn();
  const runner = {
    poll: async (id: string) => {
      onPoll();
      return JSON.stringify({ msgtype: 'stream', stream: { id, finish: false, content: '答案' } });
    },
    accept: async () => ({
      reply: { msgtype: 'stream', stream: { id: STREAM_ID, finish: false, content: '' } },
      duplicate: false,
      streamId: STREAM_ID,
    }),
  } as unknown as Runner;
  const d: CallbackDeps = {
    bots: { byId: () => bot, bySignature: () => bot },
    runner,
    config: { wecom: {} } as CallbackDeps['config'],
    metrics: { observePoll, countCallback: () => {}, recordCallbackSkew: () => {} } as unknown as Metrics,
    isDraining: () => false,
    clock: new CallbackClock({ maxSkewSeconds: 300, record: () => {} }),
  };
  return { deps: d, observePoll };
}

async function send(
  d: CallbackDeps,
  logger: ReturnType<typeof createLogger>,
  c: { url: string; body: Buffer },
): Promise<string | Error> {
  return answerCallback(d, {
    query: queryOf(c.url),
    body: async () => c.body,
    requestId: 'req-1',
    logger,
  }).catch((error: unknown) => error as Error);
}

const callbackLines = (lines: Line[]) => lines.filter((l) => l.msg === 'callback');

describe('the callback line', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is at info for a message', async () => {
    const { deps: d } = deps();
    const { lines, logger } = capture('info');
    expect(await send(d, logger, callback(text))).toEqual(expect.any(String));
    logger.flush();
    expect(callbackLines(lines)).toEqual([
      expect.objectContaining({ level: 30, msgtype: 'text', outcome: 'accepted', streamId: STREAM_ID }),
    ]);
  });

  it('is at debug only for a poll answered as usual, which is counted and timed all the same', async () => {
    const { deps: d, observePoll } = deps();
    const atInfo = capture('info');
    const reply = await send(d, atInfo.logger, callback(poll));
    expect(typeof reply).toBe('string');
    atInfo.logger.flush();
    expect(callbackLines(atInfo.lines)).toEqual([]);

    const atDebug = capture('debug');
    await send(d, atDebug.logger, callback(poll));
    atDebug.logger.flush();
    expect(callbackLines(atDebug.lines)).toEqual([
      expect.objectContaining({
        level: 20,
        msgtype: 'stream',
        outcome: 'polled',
        streamId: STREAM_ID,
        userid: 'erin',
        requestId: 'req-1',
      }),
    ]);
    expect(observePoll).toHaveBeenCalledTimes(2);
  });

  it('is at info for a slow poll', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const { deps: d } = deps(() => vi.advanceTimersByTime(SLOW_POLL_SECONDS * 1000 + 1));
    const { lines, logger } = capture('info');
    expect(typeof (await send(d, logger, callback(poll)))).toBe('string');
    logger.flush();
    const [line] = callbackLines(lines);
    expect(line).toMatchObject({ level: 30, msgtype: 'stream', outcome: 'polled', streamId: STREAM_ID });
    expect(Number(line?.durationMs)).toBeGreaterThan(SLOW_POLL_SECONDS * 1000);
  });

  it('is at info for a refused poll', async () => {
    const { deps: d, observePoll } = deps();
    const { lines, logger } = capture('info');
    expect(await send(d, logger, callback(poll, 'f'.repeat(40)))).toBeInstanceOf(Error);
    logger.flush();
    expect(callbackLines(lines)).toEqual([
      expect.objectContaining({ level: 30, outcome: 'rejected:bad_signature' }),
    ]);
    expect(observePoll).not.toHaveBeenCalled();
  });
});
