// What a stream records next, told as given/when/then: given its history, when something happens,
// then these facts (or none, or the command is refused). Every choice the owner of a stream makes
// about what to record is here.
import { describe, it } from 'vitest';
import {
  type DecideSettings,
  defaultDecideSettings,
  IllegalCommand,
  type IncomingMessage,
} from './decide.js';
import { closeBubble } from './delivery.js';
import type { StreamEvent } from './events.js';
import { fold } from './fold.js';
import { MAX_CONTENT_BYTES } from './render.js';
import {
  bubbleClosed,
  commandHandled,
  completed,
  decider,
  delta,
  dequeued,
  difyStarted,
  failed,
  filesUploaded,
  granted,
  opened,
  queued,
  released,
  replaced,
  T0,
  takenOver,
} from './specification.js';
import { defaultTexts as texts } from './texts.js';

const message: IncomingMessage = {
  msgid: 'msg-1',
  bot: 'bot-1',
  userid: 'zhangsan',
  chattype: 'single',
  text: '你好',
};
const open = (m: Partial<IncomingMessage> = {}, extra: object = {}) => ({
  type: 'open' as const,
  at: T0,
  streamId: 'stream-1',
  node: 'node-a',
  message: { ...message, ...m },
  ...extra,
});
/** What `open` records of the message itself. */
const openedBy = (fields: Partial<StreamEvent & { type: 'stream.opened' }> = {}) =>
  opened({ node: 'node-a', chatid: undefined, responseUrl: undefined, ...fields });

const thinking = [opened(), granted()];
const streaming = [...thinking, delta('你好')];
const done = [...streaming, completed()];

describe('decide', () => {
  describe('a message opens its stream', () => {
    it('a question: the stream opens, and waits to know who asks', () => {
      decider.given([]).when(open()).then([openedBy()]);
    });

    it('where everyone may ask, the grant comes with it', () => {
      decider
        .given([])
        .when(open({}, { grant: { id: 'zhangsan' } }))
        .then([openedBy(), granted()]);
    });

    it('a message past a rate limit: answered at once, never asked', () => {
      decider
        .given([])
        .when(open({}, { refused: { text: '慢一点', message: 'the user limit is full' } }))
        .then([openedBy(), failed('rate_limited', 'the user limit is full', '慢一点')]);
    });

    it('/help is answered at once', () => {
      decider
        .given([])
        .when(open({ text: '/help' }))
        .then([openedBy({ query: '/help' }), commandHandled('help', texts.help)]);
    });

    it('/new starts a new conversation; /new with a question asks it in one', () => {
      decider
        .given([])
        .when(open({ text: '/new' }))
        .then([openedBy({ query: '/new' }), commandHandled('new', texts.newConversation)]);
      decider
        .given([])
        .when(open({ text: '/new 今天天气' }))
        .then([openedBy({ query: '今天天气', fresh: true })]);
    });

    it('/stop says whether there was an answer to stop', () => {
      decider
        .given([])
        .when(open({ text: '/stop' }, { stopped: true }))
        .then([openedBy({ query: '/stop' }), commandHandled('stop', texts.stopped)]);
      decider
        .given([])
        .when(open({ text: '停止' }, { stopped: false }))
        .then([openedBy({ query: '停止' }), commandHandled('stop', texts.nothingToStop)]);
    });

    it('nothing to ask (only the mention) is answered at once', () => {
      decider
        .given([])
        .when(open({ text: '  ' }))
        .then([openedBy({ query: '  ' }), commandHandled('empty', texts.emptyQuestion)]);
    });

    it('an image alone asks Dify to look at it; a quote comes before the question', () => {
      const attachments = [{ type: 'image' as const, url: 'https://x/1' }];
      decider
        .given([])
        .when(open({ text: '', attachments }))
        .then([openedBy({ query: texts.imageQuestion, attachments })]);
      decider
        .given([])
        .when(open({ text: '这是什么意思', quoted: '第一行\n第二行' }))
        .then([openedBy({ query: '> 第一行\n> 第二行\n\n这是什么意思' })]);
    });

    it('a stream opens once', () => {
      decider.given([opened()]).when(open()).thenThrows(IllegalCommand);
    });
  });

  describe('who asks', () => {
    it('granted: the answer may be asked for', () => {
      decider
        .given([opened()])
        .when({ type: 'admit', at: T0, outcome: { granted: true, user: { id: 'zhangsan' } } })
        .then([granted()]);
    });

    it('denied: the stream ends with the text the authenticator chose', () => {
      decider
        .given([opened()])
        .when({ type: 'admit', at: T0, outcome: { granted: false, reason: 'disabled', text: '无权' } })
        .then([{ type: 'auth.denied', at: T0, reason: 'disabled', text: '无权' }]);
    });

    it('granted before (everyone may ask): nothing more to record; refused now: the answer ends', () => {
      const admit = (granted: boolean) =>
        ({
          type: 'admit',
          at: T0,
          outcome: granted
            ? { granted, user: { id: 'zhangsan' } }
            : { granted, reason: 'disabled', text: '无权' },
        }) as const;
      decider.given(thinking).when(admit(true)).thenNothing();
      decider
        .given(thinking)
        .when(admit(false))
        .then([failed('denied', 'disabled', '无权')]);
    });
  });

  describe('getting ready to ask', () => {
    it('the user’s files, once uploaded, are recorded once', () => {
      const files = [{ type: 'image' as const, id: 'f1', name: 'a.png' }];
      decider
        .given(thinking)
        .when({ type: 'attachFiles', at: T0, files })
        .then([filesUploaded(files)]);
      decider
        .given([...thinking, filesUploaded(files)])
        .when({ type: 'attachFiles', at: T0, files })
        .thenNothing();
    });

    it('an answer ahead in the line: queued, once; its turn: dequeued', () => {
      decider
        .given(thinking)
        .when({ type: 'wait', at: T0, behind: 'stream-0' })
        .then([queued('stream-0')]);
      decider
        .given([...thinking, queued('stream-0')])
        .when({ type: 'wait', at: T0, behind: 'stream-0' })
        .thenNothing();
      decider
        .given([...thinking, queued()])
        .when({ type: 'proceed', at: T0 })
        .then([dequeued()]);
      decider.given(thinking).when({ type: 'proceed', at: T0 }).thenNothing();
    });
  });

  describe('the answer', () => {
    it('Dify’s ids, its pieces and its end are recorded as they come', () => {
      const ids = { conversationId: 'conv-1', messageId: 'm-1', taskId: 't-1' };
      decider
        .given(thinking)
        .when({ type: 'start', at: T0, ids })
        .then([difyStarted(ids)]);
      decider
        .given(thinking)
        .when({ type: 'add', at: T0, text: '你' })
        .then([delta('你')]);
      decider
        .given(streaming)
        .when({ type: 'replace', at: T0, text: '改' })
        .then([replaced('改')]);
      decider
        .given(streaming)
        .when({ type: 'end', at: T0, usage: { total_tokens: 3 } })
        .then([completed({ total_tokens: 3 })]);
    });

    it('an empty piece records nothing; a lone surrogate never reaches the answer', () => {
      decider.given(streaming).when({ type: 'add', at: T0, text: '' }).thenNothing();
      decider
        .given(streaming)
        .when({ type: 'add', at: T0, text: 'a\ud800' })
        .then([delta('a\ufffd')]);
    });

    it('past WeCom’s 20480 bytes the bubble closes with what fits, and the answer goes on', () => {
      const long = '长'.repeat(MAX_CONTENT_BYTES / 3);
      const after = fold([...streaming, delta(long)]);
      decider
        .given(streaming)
        .when({ type: 'add', at: T0, text: long })
        .then([delta(long), closeBubble(after, 'overflow', T0, texts)]);
      decider
        .given([...streaming, delta(long), bubbleClosed('overflow')])
        .when({ type: 'add', at: T0, text: '更多' })
        .then([delta('更多')]);
    });

    it('at ANSWER_MAX_BYTES the answer ends, cut: what fits is kept', () => {
      const settings: DecideSettings = { ...defaultDecideSettings, answerMaxBytes: 10 };
      decider
        .given(streaming, settings) // 6 bytes so far
        .when({ type: 'add', at: T0, text: '世界和平' })
        .then([delta('世'), { type: 'answer.completed', at: T0, cut: true }]);
      decider
        .given(thinking, settings)
        .when({ type: 'replace', at: T0, text: '0123456789ab' })
        .then([replaced('0123456789'), { type: 'answer.completed', at: T0, cut: true }]);
    });

    it('after a takeover the answer starts over: the old one does not count against the limit', () => {
      const settings: DecideSettings = { ...defaultDecideSettings, answerMaxBytes: 10 };
      decider
        .given([...streaming, takenOver(), granted()], settings)
        .when({ type: 'add', at: T0, text: '0123456789' })
        .then([delta('0123456789')]);
    });

    it('Dify ending without saying so, or failing: the answer fails with what went wrong', () => {
      decider
        .given(streaming)
        .when({ type: 'endEarly', at: T0 })
        .then([failed('dify_interrupted', 'stream ended early')]);
      decider
        .given(streaming)
        .when({ type: 'fail', at: T0, failure: { code: 'dify_timeout', message: 'idle 60 s' } })
        .then([failed('dify_timeout', 'idle 60 s')]);
    });

    it('a settled stream takes no more of the answer', () => {
      for (const type of ['add', 'replace'] as const)
        decider.given(done).when({ type, at: T0, text: 'late' }).thenNothing();
      decider.given(done).when({ type: 'end', at: T0 }).thenNothing();
      decider
        .given(done)
        .when({ type: 'fail', at: T0, failure: { code: 'dify_error', message: 'late' } })
        .thenNothing();
    });
  });

  describe('from outside the answer', () => {
    it('/stop, the answer timeout: the running answer ends; a settled one is left alone', () => {
      decider
        .given(streaming)
        .when({ type: 'stop', at: T0 })
        .then([failed('stopped', 'stopped by the user')]);
      decider
        .given(thinking)
        .when({ type: 'timeOut', at: T0 })
        .then([failed('answer_timeout', 'the answer ran past ANSWER_TIMEOUT_SECONDS')]);
      decider.given(done).when({ type: 'stop', at: T0 }).thenNothing();
    });

    it('the window’s end closes the bubble once, with the answer so far', () => {
      decider
        .given(streaming)
        .when({ type: 'closeWindow', at: T0 })
        .then([closeBubble(fold(streaming), 'window', T0, texts)]);
      decider
        .given([...streaming, bubbleClosed()])
        .when({ type: 'closeWindow', at: T0 })
        .thenNothing();
    });

    it('a draining owner gives a running stream back', () => {
      decider
        .given(streaming)
        .when({ type: 'release', at: T0, node: 'node-a' })
        .then([released('node-a')]);
      decider.given(done).when({ type: 'release', at: T0, node: 'node-a' }).thenNothing();
    });
  });

  describe('takeover', () => {
    it('a running stream whose owner is gone is taken over and starts over', () => {
      decider
        .given([opened({ node: 'node-a' }), granted(), delta('半')])
        .when({ type: 'takeOver', at: T0, node: 'node-b' })
        .then([{ type: 'stream.taken_over', at: T0, node: 'node-b', attempt: 1, previousNode: 'node-a' }]);
    });

    it('where everyone may ask, the grant comes with it', () => {
      decider
        .given([opened({ node: 'node-a' }), granted()])
        .when({ type: 'takeOver', at: T0, node: 'node-b', grant: { id: 'zhangsan' } })
        .then([
          { type: 'stream.taken_over', at: T0, node: 'node-b', attempt: 1, previousNode: 'node-a' },
          granted(),
        ]);
    });

    it('past the takeovers allowed, the stream ends with an error', () => {
      decider
        .given([opened(), granted(), takenOver('n1', 1), takenOver('n2', 2)])
        .when({ type: 'takeOver', at: T0, node: 'n3' })
        .then([
          { type: 'stream.taken_over', at: T0, node: 'n3', attempt: 3, previousNode: 'n2' },
          failed('takeover_exhausted', 'the stream lost its owner 3 times'),
        ]);
    });

    it('a settled stream is not taken over', () => {
      decider.given(done).when({ type: 'takeOver', at: T0, node: 'n2' }).thenThrows(IllegalCommand);
    });
  });

  describe('after the answer', () => {
    it('what went past the bubble is recorded once: sent or failed', () => {
      decider
        .given(done)
        .when({ type: 'recordDelivery', at: T0, outcome: { sent: 42 } })
        .then([{ type: 'delivery.sent', at: T0, bytes: 42 }]);
      decider
        .given([...done, { type: 'delivery.sent', at: T0, bytes: 42 }])
        .when({ type: 'recordDelivery', at: T0, outcome: { failed: 'again' } })
        .thenNothing();
    });

    it('a rating is recorded on a completed answer only', () => {
      const rate = { type: 'rate', at: T0, rating: 'like', by: 'lisi', forwarded: true } as const;
      decider
        .given(done)
        .when(rate)
        .then([{ type: 'feedback.given', at: T0, rating: 'like', by: 'lisi', forwarded: true }]);
      decider
        .given([...streaming, failed()])
        .when(rate)
        .thenNothing();
    });
  });
});
