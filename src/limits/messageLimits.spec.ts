// The limits a new message falls under, from the settings: defaults within what a person types and
// what WeCom itself allows, and 0 turning a limit off.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config.js';
import { messageLimits } from './messageLimits.js';

const required = {
  WECOM_TOKEN: 'token',
  WECOM_ENCODING_AES_KEY: 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C',
  DIFY_API_KEY: 'app-key',
};

function limitsOf(env: Record<string, string>) {
  const result = parseConfig({ ...required, ...env });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.config.limits;
}

describe('rate limit settings', () => {
  it('default to 10 messages a minute per user and 20 per conversation', () => {
    expect(limitsOf({})).toEqual({ userPerMinute: 10, conversationPerMinute: 20 });
  });

  it('take 0 to turn a limit off, and refuse what is not a whole number ≥ 0', () => {
    expect(limitsOf({ RATE_LIMIT_USER_PER_MINUTE: '0', RATE_LIMIT_CONVERSATION_PER_MINUTE: '0' })).toEqual({
      userPerMinute: 0,
      conversationPerMinute: 0,
    });
    const result = parseConfig({
      ...required,
      RATE_LIMIT_USER_PER_MINUTE: '-1',
      RATE_LIMIT_CONVERSATION_PER_MINUTE: 'lots',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'RATE_LIMIT_CONVERSATION_PER_MINUTE',
      'RATE_LIMIT_USER_PER_MINUTE',
    ]);
  });
});

describe('the limits of a message', () => {
  const settings = { userPerMinute: 10, conversationPerMinute: 20 };

  it('in a group: the sender, per bot, and the whole group', () => {
    expect(
      messageLimits(settings, { bot: 'bot-1', userid: 'alice', chattype: 'group', chatid: 'wrkSFfCgAA' }),
    ).toEqual([
      { scope: 'user', id: 'bot-1:alice', limit: 10, windowMs: 60_000 },
      { scope: 'conversation', id: 'bot-1:group:wrkSFfCgAA', limit: 20, windowMs: 60_000 },
    ]);
  });

  it('in a single chat: the sender, and that chat', () => {
    expect(messageLimits(settings, { bot: 'bot-1', userid: 'alice', chattype: 'single' })).toEqual([
      { scope: 'user', id: 'bot-1:alice', limit: 10, windowMs: 60_000 },
      { scope: 'conversation', id: 'bot-1:single:alice', limit: 20, windowMs: 60_000 },
    ]);
  });

  it('leaves out a limit set to 0', () => {
    const alice = { bot: 'bot-1', userid: 'alice', chattype: 'single' } as const;
    expect(messageLimits({ userPerMinute: 0, conversationPerMinute: 20 }, alice).map((l) => l.scope)).toEqual(
      ['conversation'],
    );
    expect(messageLimits({ userPerMinute: 0, conversationPerMinute: 0 }, alice)).toEqual([]);
  });
});
