// The fake WeCom long-connection server (test/support/fakeWecomWs.ts) driven by WeCom's own SDK client,
// @wecom/aibot-node-sdk: what passes here is what the service will meet through that SDK. The rules it
// keeps are docs/protocol/wecom.md §11.
import { type WsFrame as SdkFrame, WSClient, type WSClientOptions } from '@wecom/aibot-node-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type FakeWecomWs, type FakeWecomWsOptions, startFakeWecomWs } from './support/fakeWecomWs.js';

const silentLogger = { debug() {}, info() {}, warn() {}, error() {} };

let fake: FakeWecomWs | undefined;
const clients: WSClient[] = [];
const rawSockets: WebSocket[] = [];

async function start(options: Partial<FakeWecomWsOptions> = {}): Promise<FakeWecomWs> {
  fake = await startFakeWecomWs({ bots: { bot1: 'secret1' }, ...options });
  return fake;
}

afterEach(async () => {
  for (const client of clients.splice(0)) {
    client.removeAllListeners();
    client.disconnect();
  }
  for (const socket of rawSockets.splice(0)) socket.terminate();
  await fake?.stop();
  fake = undefined;
});

function client(f: FakeWecomWs, options: Partial<WSClientOptions> = {}): WSClient {
  const c = new WSClient({
    botId: 'bot1',
    secret: 'secret1',
    wsUrl: f.url,
    logger: silentLogger,
    heartbeatInterval: 200,
    reconnectInterval: 20,
    maxReconnectAttempts: -1,
    ...options,
  });
  clients.push(c);
  return c;
}

/** Connects and resolves once the fake has accepted the subscribe. */
async function connected(f: FakeWecomWs, options: Partial<WSClientOptions> = {}): Promise<WSClient> {
  const c = client(f, options);
  let authenticated = false;
  c.once('authenticated', () => {
    authenticated = true;
  });
  c.connect();
  await f.waitFor('the client to authenticate', () => authenticated);
  return c;
}

/** Pushes a text message and resolves with the frame the client emitted for it. */
async function messageTo(f: FakeWecomWs, c: WSClient): Promise<SdkFrame> {
  let got: SdkFrame | undefined;
  c.once('message', (frame) => {
    got = frame;
  });
  const reqId = f.message('bot1', { msgtype: 'text', text: { content: 'hi' } });
  await f.waitFor('the message to reach the client', () => got !== undefined);
  expect(got?.headers.req_id).toBe(reqId);
  return got as SdkFrame;
}

describe('subscribing', () => {
  it('accepts the right secret: the client authenticates and the connection is the bot’s', async () => {
    const f = await start();
    await connected(f);
    expect(f.subscribed('bot1')).toBe(1);
    expect(f.subscribes).toEqual([{ at: expect.any(Number), connection: 1, botId: 'bot1', accepted: true }]);
    expect(f.received[0]?.frame).toMatchObject({ cmd: 'aibot_subscribe', body: { bot_id: 'bot1' } });
    expect(f.received[0]?.ack).toEqual({ errcode: 0, errmsg: 'ok' });
  });

  it('refuses a wrong secret with 40058 and leaves the socket for the client to close', async () => {
    const f = await start();
    const c = client(f, { secret: 'wrong', maxAuthFailureAttempts: 0 });
    const errors: Error[] = [];
    c.on('error', (error) => errors.push(error));
    c.connect();
    await f.waitFor('the client to report the refusal', () => errors.length > 0);
    expect(errors[0]?.message).toBe('Authentication failed: invalid secret (code: 40058)');
    expect(f.subscribes).toMatchObject([{ botId: 'bot1', accepted: false }]);
    expect(f.subscribed('bot1')).toBeUndefined();
    await f.waitFor('the client to close its socket', () => f.openSockets() === 0);
  });

  it('answers anything before a subscribe with 846609', async () => {
    const f = await start();
    const socket = new WebSocket(f.url);
    rawSockets.push(socket);
    const answers: unknown[] = [];
    socket.on('message', (data) => answers.push(JSON.parse(data.toString())));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ cmd: 'ping', headers: { req_id: 'ping_1' } }));
    await f.waitFor('the ack', () => answers.length === 1);
    expect(answers[0]).toEqual({
      headers: { req_id: 'ping_1' },
      errcode: 846609,
      errmsg: 'aibot websocket not subscribed',
    });
    expect(f.received[0]).toMatchObject({ connection: 1, frame: { cmd: 'ping' } });
    expect(f.received[0]?.botId).toBeUndefined();
  });

  it('hands the bot to a newer subscribe: the older connection gets disconnected_event and is closed', async () => {
    const f = await start();
    const first = await connected(f);
    let kicked = false;
    first.on('event.disconnected_event', () => {
      kicked = true;
    });
    await connected(f);
    await f.waitFor('the first client to be told', () => kicked);
    expect(f.subscribed('bot1')).toBe(2);
    await f.waitFor('the older socket to close', () => f.openSockets() === 1);
  });

  it('acks pings from a subscribed connection', async () => {
    const f = await start();
    await connected(f);
    await f.waitFor('an acked ping', () =>
      f.received.some((r) => r.frame.cmd === 'ping' && r.botId === 'bot1' && r.ack !== undefined),
    );
    const ping = f.received.find((r) => r.frame.cmd === 'ping' && r.ack !== undefined);
    expect(ping?.ack).toEqual({ errcode: 0, errmsg: 'ok' });
  });
});

describe('replies', () => {
  it('delivers a message callback, acks its stream replies and records them by req_id', async () => {
    const f = await start();
    const c = await connected(f);
    const frame = await messageTo(f, c);
    expect(frame.body).toMatchObject({ aibotid: 'bot1', chattype: 'single', from: { userid: 'zhangsan' } });

    const answer = await c.replyStream(frame, 'sid', 'abc', false);
    expect(answer).toEqual({ headers: { req_id: frame.headers.req_id }, errcode: 0, errmsg: 'ok' });
    await c.replyStream(frame, 'sid', 'abcdef', true);
    expect(f.repliesTo(frame.headers.req_id).map((r) => r.body?.stream)).toEqual([
      { id: 'sid', finish: false, content: 'abc' },
      { id: 'sid', finish: true, content: 'abcdef' },
    ]);
  });

  it('refuses an update after the stream finished with 846608', async () => {
    const f = await start();
    const c = await connected(f);
    const frame = await messageTo(f, c);
    await c.replyStream(frame, 'sid', 'done', true);
    await expect(c.replyStream(frame, 'sid', 'more', false)).rejects.toMatchObject({
      errcode: 846608,
      errmsg: 'stream message update expired',
    });
  });

  it('refuses an update once the stream has expired with 846608', async () => {
    const f = await start({ streamExpiryMs: 50 });
    const c = await connected(f);
    const frame = await messageTo(f, c);
    await c.replyStream(frame, 'sid', 'a', false);
    const firstAt = f.received.at(-1)?.at ?? 0;
    await f.waitFor('the stream to expire', () => Date.now() - firstAt > 50);
    await expect(c.replyStream(frame, 'sid', 'ab', false)).rejects.toMatchObject({ errcode: 846608 });
    // A new stream on the same req_id has its own clock.
    await expect(c.replyStream(frame, 'sid2', 'ab', false)).resolves.toMatchObject({ errcode: 0 });
  });

  it('refuses aibot_respond_msg with an event’s req_id or an unknown one (846605)', async () => {
    const f = await start();
    const c = await connected(f);
    const reqId = f.event('bot1', 'enter_chat');
    await expect(c.replyStream({ headers: { req_id: reqId } }, 'sid', 'x')).rejects.toMatchObject({
      errcode: 846605,
      errmsg: 'invalid req_id',
    });
    await expect(c.replyStream({ headers: { req_id: 'unknown' } }, 'sid', 'x')).rejects.toMatchObject({
      errcode: 846605,
    });
  });

  it('accepts a welcome for enter_chat within the window and refuses one after it', async () => {
    const f = await start({ welcomeWithinMs: 50 });
    const c = await connected(f);
    const events: SdkFrame[] = [];
    c.on('event.enter_chat', (frame) => events.push(frame));
    f.event('bot1', 'enter_chat');
    await f.waitFor('the enter_chat event', () => events.length === 1);
    const [enter] = events as [SdkFrame];
    expect(enter.body).toMatchObject({ msgtype: 'event', event: { eventtype: 'enter_chat' } });
    const welcome = { msgtype: 'text', text: { content: 'welcome' } } as const;
    await expect(c.replyWelcome(enter, welcome)).resolves.toMatchObject({ errcode: 0 });

    f.event('bot1', 'enter_chat');
    await f.waitFor('the second enter_chat event', () => events.length === 2);
    const late = events[1] as SdkFrame;
    const pushedAt = Date.now();
    await f.waitFor('the welcome window to pass', () => Date.now() - pushedAt > 60);
    await expect(c.replyWelcome(late, welcome)).rejects.toMatchObject({ errcode: 846605 });
  });

  it('accepts a card update for a template_card_event', async () => {
    const f = await start();
    const c = await connected(f);
    const events: SdkFrame[] = [];
    c.on('event.template_card_event', (frame) => events.push(frame));
    f.event('bot1', 'template_card_event', {
      card_type: 'button_interaction',
      event_key: 'yes',
      task_id: 't1',
    });
    await f.waitFor('the card event', () => events.length === 1);
    const [card] = events as [SdkFrame];
    expect(card.body?.event).toMatchObject({ template_card_event: { event_key: 'yes' } });
    await expect(
      c.updateTemplateCard(card, { card_type: 'button_interaction', task_id: 't1' }),
    ).resolves.toMatchObject({ errcode: 0 });
    expect(f.repliesTo(card.headers.req_id)).toMatchObject([{ cmd: 'aibot_respond_update_msg' }]);
  });

  it('records aibot_send_msg and refuses one without a chatid', async () => {
    const f = await start();
    const c = await connected(f);
    await c.sendMessage('zhangsan', { msgtype: 'markdown', markdown: { content: 'later' } });
    await expect(
      c.sendMessage('', { msgtype: 'markdown', markdown: { content: 'x' } }),
    ).rejects.toMatchObject({
      errcode: 40058,
    });
    expect(f.sent().map((s) => s.body?.chatid)).toEqual(['zhangsan', '']);
  });

  it('answers an unknown cmd with an error but records it', async () => {
    const f = await start();
    const c = await connected(f);
    await expect(c.reply({ headers: { req_id: 'x_1' } }, {}, 'aibot_bogus')).rejects.toMatchObject({
      errcode: 40001,
    });
    expect(f.received.at(-1)?.frame.cmd).toBe('aibot_bogus');
  });
});

describe('misbehaviour on request', () => {
  it('failNext answers the next matching reply with the errcode instead, then handles as usual', async () => {
    const f = await start();
    const c = await connected(f);
    const frame = await messageTo(f, c);
    f.failNext('aibot_respond_msg', 6000);
    await expect(c.replyStream(frame, 'sid', 'a', false)).rejects.toMatchObject({
      headers: { req_id: frame.headers.req_id },
      errcode: 6000,
      errmsg: 'command conflict',
    });
    await expect(c.replyStream(frame, 'sid', 'a', false)).resolves.toMatchObject({ errcode: 0 });
    expect(f.repliesTo(frame.headers.req_id).map((r) => r.body?.stream?.content)).toEqual(['a', 'a']);
  });

  it('failNext with a match leaves other frames of the cmd alone', async () => {
    const f = await start();
    const c = await connected(f);
    const frame = await messageTo(f, c);
    f.failNext('aibot_respond_msg', 846601, {
      errmsg: 'busy',
      match: (r) => r.body?.stream?.finish === true,
    });
    await expect(c.replyStream(frame, 'sid', 'a', false)).resolves.toMatchObject({ errcode: 0 });
    await expect(c.replyStream(frame, 'sid', 'ab', true)).rejects.toMatchObject({
      errcode: 846601,
      errmsg: 'busy',
    });
    await expect(c.replyStream(frame, 'sid', 'ab', true)).resolves.toMatchObject({ errcode: 0 });
  });

  it('a silenced connection makes the client give it up after missed pings and subscribe again', async () => {
    const f = await start();
    await connected(f);
    f.silence('bot1');
    await f.waitFor('a new connection for the bot', () => f.subscribed('bot1') === 2, 10_000);
    const unanswered = f.received.filter((r) => r.connection === 1 && r.frame.cmd === 'ping' && !r.ack);
    expect(unanswered.length).toBeGreaterThanOrEqual(2);
    // The new connection is answered again.
    await f.waitFor('an acked ping on the new connection', () =>
      f.received.some((r) => r.connection === 2 && r.frame.cmd === 'ping' && r.ack?.errcode === 0),
    );
  });

  it('a dropped connection is reconnected by the client', async () => {
    const f = await start();
    await connected(f);
    f.drop('bot1');
    expect(f.subscribed('bot1')).toBeUndefined();
    await f.waitFor('the client to subscribe again', () => f.subscribed('bot1') === 2);
  });

  it('kick sends disconnected_event and the client stays away', async () => {
    const f = await start();
    const c = await connected(f);
    let kicked = false;
    c.on('event.disconnected_event', () => {
      kicked = true;
    });
    f.kick('bot1');
    await f.waitFor('the client to be told and the socket to close', () => kicked && f.openSockets() === 0);
    expect(f.subscribed('bot1')).toBeUndefined();
    expect(f.subscribes).toHaveLength(1);
  });

  it('text that is not JSON does not break the connection', async () => {
    const f = await start();
    const c = await connected(f);
    f.sendRaw('bot1', 'not json {');
    const frame = await messageTo(f, c);
    await expect(c.replyStream(frame, 'sid', 'still here', true)).resolves.toMatchObject({ errcode: 0 });
    expect(f.subscribed('bot1')).toBe(1);
  });

  it('records text from the client that is not a frame, unanswered', async () => {
    const f = await start();
    const socket = new WebSocket(f.url);
    rawSockets.push(socket);
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send('garbage');
    await f.waitFor('the text to be recorded', () => f.received.length === 1);
    expect(f.received[0]).toMatchObject({ connection: 1, frame: {}, raw: 'garbage' });
    expect(f.received[0]?.ack).toBeUndefined();
  });

  it('waitFor names what it waited for when it times out', async () => {
    const f = await start();
    await expect(f.waitFor('never', () => false, 50)).rejects.toThrow('not within 50 ms: never');
  });
});
