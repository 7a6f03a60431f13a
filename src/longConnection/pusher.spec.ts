// The pusher against a stand-in stream and connection: frames only when the bubble changed, no more
// than the cap (the last kept for the end), the first carrying feedback.id; WeCom refusing the
// stream's frames sends the rest apart once the answer is finished; 6000 is retried.
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../log.js';
import { Pusher, type PusherDeps, restOf } from './pusher.js';

/** A stream whose bubble shows `states` one after another, a step per poll. */
function scripted(
  states: Array<{ content: string; finish?: boolean; extra?: Record<string, unknown> }>,
  respond?: PusherDeps['respond'],
  sendImage?: PusherDeps['sendImage'],
) {
  let i = 0;
  const images: Buffer[] = [];
  const files: Array<{ data: Buffer; name: string }> = [];
  const frames: Array<{
    stream: { id: string; content: string; finish: boolean; feedback?: { id: string } };
  }> = [];
  const rests: string[] = [];
  const deps: PusherDeps = {
    streamId: 'S1',
    poll: async () => {
      const state = states[Math.min(i++, states.length - 1)]!;
      const { msg_item, ...extra } = state.extra ?? {};
      return JSON.stringify({
        msgtype: 'stream',
        ...extra,
        stream: { id: 'S1', finish: state.finish ?? false, content: state.content, msg_item },
      });
    },
    respond:
      respond ??
      (async (body) => {
        frames.push(body as (typeof frames)[number]);
      }),
    sendRest: async (markdown) => {
      rests.push(markdown);
    },
    sendImage:
      sendImage ??
      (async (data) => {
        images.push(data);
      }),
    sendFile: async (data, name) => {
      files.push({ data, name });
    },
    shown: { get: async () => undefined, set: async () => undefined },
    holding: () => true,
    resubscribe: () => undefined,
    logger: silentLogger,
  };
  return { deps, frames, rests, images, files };
}

const growing = (n: number) => [
  ...Array.from({ length: n }, (_, k) => ({ content: '答'.repeat(k + 1) })),
  { content: '答'.repeat(n), finish: true },
];

describe('the pusher', () => {
  it('sends the finished bubble, then its images and files (uploaded apart), then its card', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    const jpg = Buffer.from([0xff, 0xd8, 0xff, 9]);
    const card = { card_type: 'button_interaction', task_id: 'sq_S1', button_list: [] };
    const { deps, frames, images, files } = scripted([
      { content: '图来了' },
      {
        content: '图来了',
        finish: true,
        extra: {
          msgtype: 'stream_with_template_card',
          template_card: card,
          files: [{ name: '报告.pdf', base64: Buffer.from('%PDF-1.4').toString('base64'), md5: 'y' }],
          msg_item: [png, jpg].map((b) => ({
            msgtype: 'image',
            image: { base64: b.toString('base64'), md5: 'x' },
          })),
        },
      },
    ]);
    expect(await new Pusher(deps, { frameIntervalMs: 1, maxFrames: 80 }).run()).toBe('finished');
    // No stream frame carries msg_item or a card: those go apart on this connection.
    expect(frames.map((f) => JSON.stringify(f))).toEqual([
      JSON.stringify({
        msgtype: 'stream',
        stream: { id: 'S1', finish: false, content: '图来了', feedback: { id: 'S1' } },
      }),
      JSON.stringify({ msgtype: 'stream', stream: { id: 'S1', finish: true, content: '图来了' } }),
      JSON.stringify({ msgtype: 'template_card', template_card: card }),
    ]);
    expect(images).toEqual([png, jpg]);
    expect(files).toEqual([{ data: Buffer.from('%PDF-1.4'), name: '报告.pdf' }]);
  });

  it('still sends the card when WeCom refuses an image', async () => {
    const card = { card_type: 'button_interaction', task_id: 'in_S1', button_list: [] };
    const { deps, frames } = scripted(
      [
        {
          content: '请审批',
          finish: true,
          extra: {
            template_card: card,
            msg_item: [{ msgtype: 'image', image: { base64: 'AAAA', md5: 'x' } }],
          },
        },
      ],
      undefined,
      async () => {
        throw Object.assign(new Error('upload refused'), { errcode: 40009 });
      },
    );
    expect(await new Pusher(deps, { frameIntervalMs: 1, maxFrames: 80 }).run()).toBe('finished');
    expect(frames.at(-1)).toEqual({ msgtype: 'template_card', template_card: card });
  });

  it('sends each change once, the first with feedback.id, the last finished', async () => {
    const { deps, frames } = scripted([
      { content: '正在思考…' },
      { content: '正在思考…' },
      { content: '你' },
      { content: '你好' },
      { content: '你好', finish: true },
    ]);
    // No least interval between frames: with one, a change polled within it waits, and the script
    // moves on to the next state meanwhile (as an answer would), so which changes show depends on time.
    expect(await new Pusher(deps, { frameIntervalMs: 0, maxFrames: 80 }).run()).toBe('finished');
    expect(frames.map((f) => [f.stream.content, f.stream.finish])).toEqual([
      ['正在思考…', false],
      ['你', false],
      ['你好', false],
      ['你好', true],
    ]);
    expect(frames[0]?.stream.feedback).toEqual({ id: 'S1' });
    expect(frames.slice(1).some((f) => f.stream.feedback)).toBe(false);
  });

  it('sends no more frames than the cap, keeping the last for the finished answer', async () => {
    const { deps, frames } = scripted(growing(30));
    await new Pusher(deps, { frameIntervalMs: 1, maxFrames: 5 }).run();
    expect(frames.length).toBeLessThanOrEqual(5);
    expect(frames.at(-1)?.stream).toMatchObject({ finish: true, content: '答'.repeat(30) });
    expect(frames.filter((f) => f.stream.finish)).toHaveLength(1);
  });

  it('once WeCom takes no more of the stream (846608), sends the rest apart when finished, once', async () => {
    let sent = 0;
    const { deps, rests } = scripted(
      [
        { content: '第一句。' },
        { content: '第一句。第二句。' },
        { content: '第一句。第二句。第三句。', finish: true },
      ],
      async () => {
        if (++sent > 1) throw { errcode: 846608, errmsg: 'stream message update expired' };
      },
    );
    expect(await new Pusher(deps, { frameIntervalMs: 1, maxFrames: 80 }).run()).toBe('sent-apart');
    expect(rests).toEqual(['第二句。第三句。']);
  });

  it('with the stream gone, still offers the images and the card after the rest (a form’s buttons)', async () => {
    let calls = 0;
    const taken: unknown[] = [];
    const card = { card_type: 'button_interaction', task_id: 'in_S1', button_list: [] };
    const { deps, rests, images } = scripted(
      [
        { content: '请审批' },
        {
          content: '请审批。金额 ¥320。',
          finish: true,
          extra: {
            template_card: card,
            msg_item: [{ msgtype: 'image', image: { base64: 'AAAA', md5: 'x' } }],
          },
        },
      ],
      async (body) => {
        if (++calls === 2) throw { errcode: 846608, errmsg: 'stream message update expired' };
        taken.push(body);
      },
    );
    expect(await new Pusher(deps, { frameIntervalMs: 1, maxFrames: 80 }).run()).toBe('sent-apart');
    expect(rests).toEqual(['。金额 ¥320。']);
    expect(images).toEqual([Buffer.from('AAAA', 'base64')]);
    expect(taken.at(-1)).toEqual({ msgtype: 'template_card', template_card: card });
  });

  it('sends a frame WeCom answered 6000 again', async () => {
    let calls = 0;
    const taken: string[] = [];
    const { deps } = scripted([{ content: '好', finish: true }], async (body) => {
      calls++;
      if (calls === 1) throw { errcode: 6000, errmsg: 'command conflict' };
      taken.push((body as { stream: { content: string } }).stream.content);
    });
    expect(await new Pusher(deps, { frameIntervalMs: 1, maxFrames: 80 }).run()).toBe('finished');
    expect(calls).toBe(2);
    expect(taken).toEqual(['好']);
  });

  it('stops when this node no longer holds the connection', async () => {
    const { deps } = scripted(growing(3));
    expect(
      await new Pusher({ ...deps, holding: () => false }, { frameIntervalMs: 1, maxFrames: 80 }).run(),
    ).toBe('handed-over');
  });
});

describe('what the bubble did not show', () => {
  it('is the rest after what was shown, or all of it when the bubble showed something else', () => {
    expect(restOf('abcdef', 'abc')).toBe('def');
    expect(restOf('abcdef', '正在思考…')).toBe('abcdef');
    expect(restOf('abc', undefined)).toBe('abc');
    expect(restOf('abc', 'abc')).toBe('');
  });
});
