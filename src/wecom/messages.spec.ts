// Parsing the decrypted callback JSON (docs/protocol/wecom.md §6) into the typed union.
import { describe, expect, it } from 'vitest';
import { WecomError } from './errors.js';
import { parseMessage, stripMention, type WecomMessage } from './messages.js';
import { emptyReply, textReply } from './reply.js';

const group = {
  msgid: 'CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=',
  aibotid: 'AIBOTID',
  chatid: 'CHATID',
  chattype: 'group',
  from: { userid: 'USERID' },
  response_url: 'https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC',
};
const single = { msgid: 'MSGID', aibotid: 'AIBOTID', chattype: 'single', from: { userid: 'zhangsan' } };

const parse = (value: unknown): WecomMessage => parseMessage(JSON.stringify(value));

function expectBadMessage(value: unknown, field: string): void {
  let caught: unknown;
  try {
    parse(value);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(WecomError);
  expect((caught as WecomError).code).toBe('bad_message');
  expect((caught as WecomError).message).toContain(field);
}

describe('user messages', () => {
  it('a group text keeps WeCom fields and quotes, and asks without the leading @mention', () => {
    const m = parse({
      ...group,
      msgtype: 'text',
      text: { content: '@RobotA hello robot' },
      quote: { msgtype: 'text', text: { content: 'earlier' } },
    });
    expect(m.kind).toBe('text');
    if (m.kind !== 'text') return;
    expect(m.query).toBe('hello robot');
    expect(m.text.content).toBe('@RobotA hello robot');
    expect(m.msgid).toBe(group.msgid);
    expect(m.chatid).toBe('CHATID');
    expect(m.from.userid).toBe('USERID');
    expect(m.response_url).toBe(group.response_url);
    expect(m.quote?.text?.content).toBe('earlier');
    expect(m.attachments).toEqual([]);
  });

  it('a group text asks without the trailing @mention (real sample "hello@项目开发管理助手 ")', () => {
    const m = parse({ ...group, msgtype: 'text', text: { content: 'hello@项目开发管理助手 ' } });
    expect(m.kind === 'text' && m.query).toBe('hello');
  });

  it('a single-chat text is left as typed, @ and all (only trimmed)', () => {
    const m = parse({ ...single, msgtype: 'text', text: { content: ' @RobotA hello ' } });
    expect(m.kind === 'text' && m.query).toBe('@RobotA hello');
  });

  it('an image carries its URL and an empty query', () => {
    const m = parse({ ...single, msgtype: 'image', image: { url: 'https://example.com/img' } });
    expect(m.kind).toBe('image');
    if (m.kind !== 'image') return;
    expect(m.query).toBe('');
    expect(m.attachments).toEqual([{ type: 'image', url: 'https://example.com/img' }]);
    expect(m.image.url).toBe('https://example.com/img');
  });

  it('a mixed message joins its text items and lists its images', () => {
    const m = parse({
      ...group,
      msgtype: 'mixed',
      mixed: {
        msg_item: [
          { msgtype: 'text', text: { content: '@RobotA what is' } },
          { msgtype: 'image', image: { url: 'https://example.com/a' } },
          { msgtype: 'text', text: { content: 'in this picture?' } },
          { msgtype: 'image', image: { url: 'https://example.com/b' } },
        ],
      },
    });
    expect(m.kind).toBe('mixed');
    if (m.kind !== 'mixed') return;
    expect(m.query).toBe('what is\nin this picture?');
    expect(m.attachments).toEqual([
      { type: 'image', url: 'https://example.com/a' },
      { type: 'image', url: 'https://example.com/b' },
    ]);
  });

  it('a voice message asks its transcript', () => {
    const m = parse({ ...single, msgtype: 'voice', voice: { content: '今天天气怎么样' } });
    expect(m.kind === 'voice' && m.query).toBe('今天天气怎么样');
  });

  it('a file carries its URL and an empty query', () => {
    const m = parse({ ...single, msgtype: 'file', file: { url: 'https://example.com/f' } });
    expect(m.kind).toBe('file');
    if (m.kind !== 'file') return;
    expect(m.query).toBe('');
    expect(m.attachments).toEqual([{ type: 'file', url: 'https://example.com/f' }]);
  });

  it('keeps fields this version does not know', () => {
    const m = parse({ ...single, msgtype: 'text', text: { content: 'hi', lang: 'zh' }, extra: { a: 1 } });
    expect(m).toMatchObject({ extra: { a: 1 }, text: { lang: 'zh' } });
  });
});

describe('stream refresh polls', () => {
  it('carry the stream id and no response_url', () => {
    const { response_url: _, ...poll } = group;
    const m = parse({ ...poll, msgtype: 'stream', stream: { id: 'STREAMID' } });
    expect(m.kind).toBe('stream');
    if (m.kind !== 'stream') return;
    expect(m.stream.id).toBe('STREAMID');
    expect(m.response_url).toBeUndefined();
  });
});

describe('events', () => {
  const event = (eventtype: string, payload: Record<string, unknown> = {}) => ({
    ...single,
    create_time: 1700000000,
    msgtype: 'event',
    event: { eventtype, ...payload },
  });

  it('enter_chat', () => {
    const m = parse(event('enter_chat', { enter_chat: {} }));
    expect(m.kind).toBe('enter_chat');
    expect(m.create_time).toBe(1700000000);
  });

  it('template_card_event with its card_type, event_key, task_id and selections', () => {
    const m = parse({
      ...event('template_card_event', {
        template_card_event: {
          card_type: 'button_interaction',
          event_key: 'confirm',
          task_id: 'task-1',
          selected_items: { selected_item: [{ question_key: 'q', option_ids: { option_id: ['o1'] } }] },
        },
      }),
      response_url: 'https://example.com/r',
    });
    expect(m.kind).toBe('template_card_event');
    if (m.kind !== 'template_card_event') return;
    expect(m.event.template_card_event.event_key).toBe('confirm');
    expect(m.event.template_card_event.task_id).toBe('task-1');
  });

  it('feedback_event with its id, type and reasons', () => {
    const m = parse(
      event('feedback_event', {
        feedback_event: { id: 'FB1', type: 2, content: '不对', inaccurate_reason_list: [2, 3] },
      }),
    );
    expect(m.kind).toBe('feedback_event');
    if (m.kind !== 'feedback_event') return;
    expect(m.event.feedback_event).toMatchObject({ id: 'FB1', type: 2, inaccurate_reason_list: [2, 3] });
  });

  it('an event of another eventtype is an unknown event, kept whole', () => {
    const m = parse(event('disconnected_event', { disconnected_event: { why: 1 } }));
    expect(m.kind).toBe('unknown-event');
    expect(m).toMatchObject({ event: { eventtype: 'disconnected_event', disconnected_event: { why: 1 } } });
  });
});

describe('unknown message types', () => {
  it('are kept whole as unknown', () => {
    const m = parse({ ...single, msgtype: 'video', video: { url: 'u' } });
    expect(m.kind).toBe('unknown');
    expect(m).toMatchObject({ msgtype: 'video', video: { url: 'u' } });
  });
});

describe('malformed plaintext', () => {
  it('that is not JSON is bad_json', () => {
    for (const text of ['', 'not json', '{"a":']) {
      expect(() => parseMessage(text)).toThrow(expect.objectContaining({ code: 'bad_json' }));
    }
  });

  it('that is JSON but not an object is bad_message', () => {
    for (const value of [null, 1, 'text', [1]]) {
      expect(() => parse(value)).toThrow(expect.objectContaining({ code: 'bad_message' }));
    }
  });

  it('names the missing or invalid field', () => {
    expectBadMessage({ ...single, msgid: undefined, msgtype: 'text', text: { content: 'x' } }, 'msgid');
    expectBadMessage({ ...single, aibotid: undefined, msgtype: 'text', text: { content: 'x' } }, 'aibotid');
    expectBadMessage({ ...single, chattype: 'room', msgtype: 'text', text: { content: 'x' } }, 'chattype');
    expectBadMessage({ ...single, from: {}, msgtype: 'text', text: { content: 'x' } }, 'from.userid');
    expectBadMessage({ ...single, text: { content: 'x' } }, 'msgtype');
    expectBadMessage({ ...single, msgtype: 'text' }, 'text');
    expectBadMessage({ ...single, msgtype: 'text', text: { content: 5 } }, 'text.content');
    expectBadMessage({ ...single, msgtype: 'image', image: {} }, 'image.url');
    expectBadMessage({ ...single, msgtype: 'file' }, 'file');
    expectBadMessage({ ...single, msgtype: 'voice', voice: {} }, 'voice.content');
    expectBadMessage({ ...single, msgtype: 'mixed', mixed: {} }, 'mixed.msg_item');
    expectBadMessage({ ...single, msgtype: 'stream', stream: {} }, 'stream.id');
    expectBadMessage({ ...single, msgtype: 'event' }, 'event');
    expectBadMessage(
      { ...single, msgtype: 'event', event: { eventtype: 'feedback_event' } },
      'event.feedback_event',
    );
  });
});

describe('stripMention', () => {
  it('strips a leading mention, ASCII or not, with a space or U+2005 after it', () => {
    expect(stripMention('@RobotA hello robot')).toBe('hello robot');
    expect(stripMention('@项目开发管理助手 帮我看看')).toBe('帮我看看');
    expect(stripMention('@机器人\u2005你好')).toBe('你好');
    expect(stripMention('  @Bot   spaced  ')).toBe('spaced');
    expect(stripMention('@Bot')).toBe('');
  });

  it('strips a trailing mention, even glued to the text', () => {
    expect(stripMention('hello@项目开发管理助手 ')).toBe('hello');
    expect(stripMention('what time is it @Bot')).toBe('what time is it');
  });

  it('leaves mentions in the middle alone', () => {
    expect(stripMention('ask @Alice about it')).toBe('ask @Alice about it');
    expect(stripMention('@Bot ask @Alice about it')).toBe('ask @Alice about it');
  });

  it('keeps a trailing e-mail address when the mention led', () => {
    expect(stripMention('@Bot write to a@b.com')).toBe('write to a@b.com');
  });

  it('leaves text without a mention as is, trimmed', () => {
    expect(stripMention(' hello ')).toBe('hello');
    expect(stripMention('')).toBe('');
  });
});

describe('reply plaintexts (§5)', () => {
  it('a welcome text and the empty reply', () => {
    expect(textReply('welcome')).toEqual({ msgtype: 'text', text: { content: 'welcome' } });
    expect(JSON.stringify(emptyReply())).toBe('{}');
  });
});

describe('the @mention of a bot whose display name is known (WECOM_BOT_NAME)', () => {
  const group = (content: string) =>
    JSON.stringify({
      msgid: 'm',
      aibotid: 'b',
      chatid: 'c',
      chattype: 'group',
      from: { userid: 'u' },
      msgtype: 'text',
      text: { content },
    });
  const query = (content: string, botName?: string) => {
    const m = parseMessage(group(content), { botName });
    return m.kind === 'text' ? m.query : undefined;
  };

  it('goes exactly, even when the name has a space, at the start or the end', () => {
    expect(query('@AI 助手 今天几号', 'AI 助手')).toBe('今天几号');
    expect(query('今天几号 @AI 助手', 'AI 助手')).toBe('今天几号');
    expect(query('@AI\u2005助手\u2005今天几号', 'AI\u2005助手')).toBe('今天几号');
  });

  it('leaves other mentions alone', () => {
    expect(query('@AI 助手 问问 @张三 的意见', 'AI 助手')).toBe('问问 @张三 的意见');
    expect(query('@张三 你看', 'AI 助手')).toBe('@张三 你看');
    // A member whose name starts with the bot's is not the bot.
    expect(query('@AIsha 你看 @AI', 'AI')).toBe('@AIsha 你看');
    expect(query('@AIsha 你看', 'AI')).toBe('@AIsha 你看');
    expect(query('@AI', 'AI')).toBe('');
  });

  it('without the name, a leading @word goes: a name with a space leaves its second word', () => {
    expect(query('@AI 助手 今天几号')).toBe('助手 今天几号');
  });
});

describe('a stream refresh poll, checked by hand on the fast path', () => {
  const poll = {
    msgid: 'm1',
    aibotid: 'AIBOT',
    chattype: 'single',
    from: { userid: 'zhangsan' },
    msgtype: 'stream',
    stream: { id: 'S1' },
  };
  const parse = (over: Record<string, unknown>) => parseMessage(JSON.stringify({ ...poll, ...over }));

  it('takes what the schema takes, keeping unknown fields', () => {
    expect(parse({})).toEqual({ ...poll, kind: 'stream' });
    expect(parse({ chatid: 'G1', chattype: 'group', create_time: 1, extra: { a: 1 } })).toMatchObject({
      kind: 'stream',
      chatid: 'G1',
      extra: { a: 1 },
    });
    expect(parse({ from: { userid: 'u', corpid: 'c' }, create_time: '1' })).toMatchObject({ kind: 'stream' });
  });

  it('refuses what the schema refuses, with the schema’s reason', () => {
    for (const [over, field] of [
      [{ msgid: '' }, 'msgid'],
      [{ aibotid: 3 }, 'aibotid'],
      [{ chattype: 'channel' }, 'chattype'],
      [{ chatid: 5 }, 'chatid'],
      [{ from: { userid: '' } }, 'from.userid'],
      [{ from: 'zhangsan' }, 'from'],
      [{ stream: { id: '' } }, 'stream.id'],
      [{ stream: null }, 'stream'],
      [{ create_time: true }, 'create_time'],
    ] as const) {
      let error: unknown;
      try {
        parse(over);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(over)).toMatchObject({ code: 'bad_message' });
      expect((error as Error).message, JSON.stringify(over)).toContain(field);
    }
  });
});
