// A small local Dify for `npm run demo`: POST /v1/chat-messages streams a scripted answer token by
// token over Dify's real SSE (docs/protocol/dify.md §3: one-line `data:` JSON frames, chat-family field
// order, `message` deltas, then `message_end`), and the stop endpoint ends a stream the way Dify does
// (a normal `message_end`). A question that asks for an approval pauses on a human input form (§4.9),
// answered with POST /v1/form/human_input/:token and followed with GET /v1/workflow/:id/events
// (§2.7, §2.8); every answer has suggested questions (GET /v1/messages/:id/suggested). Enough for the
// real DifyClient; the test fake (test/support/fakeDify.ts) is the one that misbehaves on purpose.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { APPROVAL, demoAnswer, demoForm, demoSuggestions, tokensOf } from './script.js';

export interface DifyStandInOptions {
  /** When set, other bearers get Dify's 401. */
  apiKey?: string;
  answer?: (query: string) => string;
  /** Between tokens. Default 40 ms. */
  tokenDelayMs?: number;
}

export interface DifyStandIn {
  /** The API base, ending in `/v1`. */
  url: string;
  close(): Promise<void>;
}

const frame = (obj: Record<string, unknown>): string => `data: ${JSON.stringify(obj)}\n\n`;

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  // Dify's error envelope (§1.3, §6.2).
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ code, message, status }));
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export async function startDifyStandIn(options: DifyStandInOptions = {}): Promise<DifyStandIn> {
  const answer = options.answer ?? demoAnswer;
  const delayMs = options.tokenDelayMs ?? 40;
  const stopped = new Set<string>();
  /** The forms the demo's runs paused on, by token, with the run's ids and, once answered, the action. */
  const forms = new Map<
    string,
    { runId: string; user: string; ids: Record<string, unknown>; taskId: string; action?: string }
  >();
  const sockets = new Set<Socket>();
  const closing = new AbortController();

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const query = body?.query;
    const user = body?.user;
    if (typeof query !== 'string' || typeof user !== 'string' || body?.response_mode !== 'streaming') {
      sendError(res, 400, 'invalid_param', 'query, user and response_mode "streaming" are required');
      return;
    }
    const given = body.conversation_id;
    const ids = {
      conversation_id: typeof given === 'string' && given !== '' ? given : randomUUID(),
      message_id: randomUUID(),
      created_at: Math.floor(Date.now() / 1000),
    };
    const taskId = randomUUID();
    // Chat-family order: event, conversation_id, message_id, created_at, then the event's own (§3.5).
    const chatFrame = (event: string, rest: Record<string, unknown>) =>
      frame({ event, ...ids, task_id: taskId, ...rest });
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    const approval = !options.answer && APPROVAL.test(query);
    const text = approval ? demoForm.before : answer(query);
    const started = Date.now();
    const sent = await streamTokens(res, text, taskId, (token) =>
      chatFrame('message', { id: ids.message_id, answer: token }),
    );
    stopped.delete(taskId);
    if (res.destroyed) return;
    if (approval && !stopped.has(taskId)) {
      // A chatflow that waits for a person: the form, then the pause that ends this stream.
      const runId = randomUUID();
      const token = `demo_${randomUUID().replaceAll('-', '')}`;
      forms.set(token, { runId, user, ids, taskId });
      const flow = (event: string, data: Record<string, unknown>) =>
        chatFrame(event, { workflow_run_id: runId, data });
      res.write(
        flow('human_input_required', {
          form_id: randomUUID(),
          form_token: token,
          node_id: 'approval',
          node_title: demoForm.title,
          form_content: demoForm.content,
          inputs: [],
          actions: demoForm.actions,
          display_in_ui: false,
          resolved_default_values: {},
          expiration_time: Math.floor(Date.now() / 1000) + 3600,
        }),
      );
      res.end(
        flow('workflow_paused', { workflow_run_id: runId, paused_nodes: ['approval'], status: 'paused' }),
      );
      return;
    }
    const usage = {
      prompt_tokens: Array.from(query).length,
      completion_tokens: sent,
      total_tokens: Array.from(query).length + sent,
      total_price: '0',
      currency: 'USD',
      latency: (Date.now() - started) / 1000,
    };
    res.end(
      chatFrame('message_end', {
        id: ids.message_id,
        metadata: { annotation_reply: null, retriever_resources: [], usage },
        files: null,
      }),
    );
  }

  /** Streams `text` token by token as `frameOf` frames; how many went out. */
  async function streamTokens(
    res: ServerResponse,
    text: string,
    taskId: string,
    frameOf: (token: string) => string,
  ): Promise<number> {
    let sent = 0;
    for (const token of tokensOf(text)) {
      if (stopped.has(taskId) || closing.signal.aborted || res.destroyed) break;
      res.write(frameOf(token));
      sent++;
      await sleep(delayMs).catch(() => undefined);
    }
    return sent;
  }

  /** The rest of a run whose form was answered: what the choice leads to, then the run's end. */
  async function resumed(
    res: ServerResponse,
    form: { ids: Record<string, unknown>; taskId: string; runId: string; action?: string },
  ): Promise<void> {
    const frameOf = (event: string, rest: Record<string, unknown>) =>
      frame({ event, ...form.ids, task_id: form.taskId, workflow_run_id: form.runId, ...rest });
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    const chosen = demoForm.actions.find((a) => a.id === form.action);
    res.write(
      frameOf('human_input_form_filled', {
        data: { node_id: 'approval', action_id: form.action, action_text: chosen?.title },
      }),
    );
    await streamTokens(res, demoForm.after(form.action ?? ''), form.taskId, (token) =>
      frameOf('message', { id: form.ids.message_id, answer: token }),
    );
    if (res.destroyed) return;
    res.write(
      frameOf('message_end', {
        id: form.ids.message_id,
        metadata: { usage: { total_tokens: 0 } },
        files: null,
      }),
    );
    res.end(frameOf('workflow_finished', { data: { id: form.runId, status: 'succeeded', outputs: {} } }));
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      sendError(res, 401, 'unauthorized', 'Access token is invalid');
      return;
    }
    if (req.method === 'POST' && path === '/v1/chat-messages') return chat(req, res);
    const stop = /^\/v1\/chat-messages\/([^/]+)\/stop$/.exec(path);
    if (req.method === 'POST' && stop?.[1]) {
      stopped.add(decodeURIComponent(stop[1]));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ result: 'success' }));
      return;
    }
    const formPath = /^\/v1\/form\/human_input\/([^/]+)$/.exec(path);
    if (req.method === 'POST' && formPath?.[1]) {
      const form = forms.get(decodeURIComponent(formPath[1]));
      const body = await readJson(req);
      if (!form) return sendError(res, 404, 'not_found', 'Form not found');
      if (form.action)
        return sendError(res, 412, 'human_input_form_submitted', 'This form has already been submitted');
      const action = body?.action;
      if (typeof action !== 'string' || !demoForm.actions.some((a) => a.id === action))
        return sendError(res, 400, 'invalid_form_data', 'unknown action');
      form.action = action;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    const events = /^\/v1\/workflow\/([^/]+)\/events$/.exec(path);
    if (req.method === 'GET' && events?.[1]) {
      const runId = decodeURIComponent(events[1]);
      const user = new URL(req.url ?? '/', 'http://demo').searchParams.get('user');
      const form = [...forms.values()].find((f) => f.runId === runId && f.action && f.user === user);
      if (!form) return sendError(res, 404, 'not_found', 'Workflow run not found');
      return resumed(res, form);
    }
    if (req.method === 'GET' && /^\/v1\/messages\/[^/]+\/suggested$/.test(path)) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ result: 'success', data: options.answer ? [] : demoSuggestions }));
      return;
    }
    if (req.method === 'GET' && path === '/v1/info') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          name: 'wecom-dify demo',
          description: 'a scripted stand-in',
          tags: [],
          mode: 'chat',
        }),
      );
      return;
    }
    sendError(res, 404, 'not_found', `the demo stand-in has no ${req.method} ${path}`);
  }

  const server = createServer((req, res) => {
    route(req, res).catch(() => {
      if (!res.headersSent) sendError(res, 500, 'internal_server_error', 'Internal Server Error');
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        closing.abort();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
