// The Dify service API client: streaming chat and workflow runs as normalized events (pushed to a
// callback as they are read, or pulled as an async iterable), plus stop, feedback, upload and app info. undici underneath: keep-alive Agents with
// explicit connect, headers and idle timeouts, one for the event streams (read in turns, src/dify/readPace.ts)
// and one for the rest. The algorithm is docs/protocol/dify.md §10.
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, type Dispatcher, FormData, request } from 'undici';
import { z } from 'zod';
import { BodyTooLargeError, discard, outboundAgent, type ProxySettings, readBounded } from '../outbound.js';
import { DifyError, fromHttpResponse, fromNetworkError } from './errors.js';
import { AnswerFold, type DifyEvent } from './events.js';
import { difyReads, pacedConnector, type ReadPace } from './readPace.js';
import { type DifyFrame, DifyFrameReader, FrameTooLargeError } from './sse.js';

/** The pino methods the client uses; a pino logger fits. */
export interface DifyLogger {
  debug(obj: Record<string, unknown>, msg?: string): void;
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
}

export type DifyAppType = 'chat' | 'workflow';

export interface DifyRetryOptions {
  /** Tries in all, the first included. Default 3. */
  attempts?: number;
  /** The first backoff; it doubles each try, with jitter. Default 500. */
  baseMs?: number;
  /** The longest backoff, also the cap on a 429's Retry-After. Default 5000. */
  maxMs?: number;
}

export interface DifyClientOptions {
  /** The service API base, `…/v1`. */
  apiUrl: string;
  apiKey: string;
  /** `chat` covers chat, agent-chat, chatflow and New Agent (POST /chat-messages); `workflow` is /workflows/run. */
  appType: DifyAppType;
  /** The idle timeout: no byte (pings count) for this long ends a stream; also the headers timeout. */
  timeoutMs: number;
  /** Default min(10 s, timeoutMs). */
  connectTimeoutMs?: number;
  retry?: DifyRetryOptions;
  /** The workflow input that receives the user's message. Default `query`. */
  queryVariable?: string;
  /** On abort after the run started, also POST its stop (§10.6), so it does not run on unseen. Default true. */
  stopOnAbort?: boolean;
  /** A reasoning model's thinking: in WeCom's folding block (default), or left out. */
  thinking?: 'show' | 'hide';
  logger?: DifyLogger;
  /** HTTP_PROXY / HTTPS_PROXY / NO_PROXY, when Dify is reached through a proxy. */
  proxy?: ProxySettings;
  /**
   * How the event streams are read: in the turns of this pace (default: the node's, `difyReads`), or
   * as they come (`false`). Streams through a proxy are always read as they come.
   */
  readPace?: ReadPace | false;
}

/** A file object of a request (§2.5). */
export type DifyFile = { type: 'image' | 'document' | 'audio' | 'video' | 'custom' } & (
  | { transfer_method: 'remote_url'; url: string }
  | { transfer_method: 'local_file'; upload_file_id: string }
);

export interface DifyStreamRequest {
  query: string;
  /** Our end-user id; scopes conversations (§1.2, §7.2). */
  user: string;
  /** A conversation id stored from an earlier turn; chat apps only. Absent: a new conversation. */
  conversationId?: string | undefined;
  inputs?: Record<string, string> | undefined;
  /** Overrides the app key: the user-token mode. Absent: the app key. */
  bearer?: string | undefined;
  signal?: AbortSignal | undefined;
  files?: DifyFile[] | undefined;
}

/** A form's answer, and the run it resumes. */
export interface DifyResumeRequest {
  formToken: string;
  /** The id of the button chosen. */
  action: string;
  /** The form's fields, by output variable (a button fills none: the defaults). */
  inputs?: Record<string, string> | undefined;
  workflowRunId: string;
  /** The user the run was started for. */
  user: string;
  /** Answering again after a takeover: a form found answered already was answered by this answer. */
  again?: boolean | undefined;
  bearer?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface DifyCallOptions {
  /** Overrides the app key: the user-token mode. Absent: the app key. */
  bearer?: string | undefined;
  signal?: AbortSignal | undefined;
}

const appInfoSchema = z.looseObject({
  name: z.string(),
  description: z.string().nullish(),
  tags: z.array(z.string()).nullish(),
  mode: z.string().nullish(),
  author_name: z.string().nullish(),
});
export type DifyAppInfo = z.infer<typeof appInfoSchema>;

const uploadedFileSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  size: z.number(),
  extension: z.string().nullish(),
  mime_type: z.string().nullish(),
});
export type DifyUploadedFile = z.infer<typeof uploadedFileSchema>;

/** How much of an error body is read: enough for any JSON envelope or an HTML page's title. */
const ERROR_BODY_BYTES = 64 * 1024;
/** The largest JSON answer read (an upload's, the app's info, a stop's or a feedback's are small). */
const JSON_BODY_BYTES = 1 << 20;

const noopLogger: DifyLogger = { debug() {}, info() {}, warn() {} };

export class DifyClient {
  readonly #apiUrl: string;
  readonly #apiKey: string;
  readonly #appType: DifyAppType;
  readonly #queryVariable: string;
  readonly #stopOnAbort: boolean;
  readonly #thinking: 'show' | 'hide';
  readonly #retry: Required<DifyRetryOptions>;
  readonly #agent: Dispatcher;
  /** The event streams' agent: `#agent` itself where they are read as they come. */
  readonly #streams: Dispatcher;
  /**
   * How long a piece of an answer may wait before it is read (ms), where the streams are read in
   * turns; undefined where each piece is read as it comes.
   */
  readonly paceMs: number | undefined;
  readonly #log: DifyLogger;
  /** The app said it suggests no questions: until then it is not asked. */
  #noSuggestionsUntil = 0;

  constructor(opts: DifyClientOptions) {
    this.#apiUrl = opts.apiUrl.replace(/\/+$/, '');
    this.#apiKey = opts.apiKey;
    this.#appType = opts.appType;
    this.#queryVariable = opts.queryVariable ?? 'query';
    this.#stopOnAbort = opts.stopOnAbort ?? true;
    this.#thinking = opts.thinking ?? 'show';
    this.#retry = { attempts: 3, baseMs: 500, maxMs: 5000, ...opts.retry };
    this.#log = opts.logger ?? noopLogger;
    // bodyTimeout is undici's idle timer: re-armed by every chunk of bytes, so `event: ping`
    // frames (which no SSE parser dispatches) keep a silent run alive (§8.1).
    const connect = { timeout: opts.connectTimeoutMs ?? Math.min(10_000, opts.timeoutMs) };
    const agentOptions = {
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000,
    };
    this.#agent = outboundAgent(opts.proxy, { connect, ...agentOptions });
    const pace = opts.readPace ?? difyReads;
    // Through a proxy the connection is the proxy's business (a tunnel for HTTPS): read as it comes.
    const paced = pace !== false && !opts.proxy?.httpProxy && !opts.proxy?.httpsProxy;
    this.#streams = paced
      ? new Agent({ connect: pacedConnector(pace, connect), ...agentOptions })
      : this.#agent;
    this.paceMs = paced ? pace.everyMs : undefined;
  }

  /**
   * One turn, pushed: each event is handed to `onEvent` as it is read, in order and synchronously, so
   * that a piece of text costs no promise on its way (a node holds a thousand answers). The events are
   * `conversation_reset` (if the stored conversation was gone), then `started`, `delta`/`replace`…,
   * and `end`. Resolves after `end`; rejects with a `DifyError` for every failure (or with what
   * `onEvent` threw). `onEvent` returning false, or `req.signal` aborting, lets go of the answer: the
   * rest is not read and the run is stopped (§10.6). A request is retried only before its stream
   * began and only for retryable errors; once a 200 stream started it is never sent again (§6.4).
   */
  async answer(req: DifyStreamRequest, onEvent: (event: DifyEvent) => unknown): Promise<void> {
    let conversationId = this.#appType === 'chat' ? req.conversationId?.trim() || undefined : undefined;
    let res: Dispatcher.ResponseData;
    for (;;) {
      try {
        res = await this.#openStream(req, conversationId);
        break;
      } catch (err) {
        // §7.2: a stored id Dify does not know (deleted, another user's, from the WebApp). Drop it and
        // send the turn once more as a new conversation; the caller learns its context was lost.
        if (err instanceof DifyError && err.code === 'not_found' && conversationId !== undefined) {
          this.#log.info(
            { conversationId, user: req.user },
            'dify: stored conversation not found, starting a new one',
          );
          const stale = conversationId;
          conversationId = undefined;
          if (onEvent({ type: 'conversation_reset', staleConversationId: stale }) === false) return;
          continue;
        }
        throw err;
      }
    }
    return this.#pump(res, req, onEvent);
  }

  /**
   * Answer a form a run paused on (human input) and read the rest of the run: POST the form with the
   * chosen action (`/form/human_input/:token`), then GET the run's events (`/workflow/:id/events`),
   * handed on as `answer`'s are. Forms are one-shot (a second submit is a 412): see `#submit` for when
   * one is sent again; a form that expired, or another answered, rejects with Dify's code.
   */
  async resume(req: DifyResumeRequest, onEvent: (event: DifyEvent) => unknown): Promise<void> {
    const opts = { bearer: req.bearer, signal: req.signal };
    await this.#submit(req, opts);
    const query = new URLSearchParams({ user: req.user }).toString();
    const path = `/workflow/${encodeURIComponent(req.workflowRunId)}/events?${query}`;
    const res = await this.#withRetry(req.signal, async () =>
      this.#eventStream(await this.#send('GET', path, undefined, 'text/event-stream', opts)),
    );
    return this.#pump(res, { query: '', user: req.user, bearer: req.bearer, signal: req.signal }, onEvent);
  }

  /**
   * POST a form's answer. A try that failed where Dify may have taken it (a 5xx, a reset) is sent
   * again, and then "answered already" (412) means the earlier try went through; as it does for an
   * answer asked again after a takeover (`again`). Any other refusal rejects with Dify's code.
   */
  async #submit(req: DifyResumeRequest, opts: DifyCallOptions): Promise<void> {
    const body = { inputs: req.inputs ?? {}, action: req.action, user: req.user };
    const path = `/form/human_input/${encodeURIComponent(req.formToken)}`;
    let tried = false;
    await this.#withRetry(
      opts.signal,
      async () => {
        try {
          await this.#callJson('POST', path, body, opts, { attempts: 1 });
        } catch (error) {
          const again = req.again || tried;
          tried = true;
          if (!(again && error instanceof DifyError && error.code === 'human_input_form_submitted'))
            throw error;
          this.#log.info(
            { workflowRunId: req.workflowRunId },
            'dify: the form was answered already; reading on',
          );
        }
      },
      // Unlike a run's start, a failure that may have reached Dify (a reset, a timeout) is tried again:
      // a second submit cannot answer twice, it is told the form was answered.
      { retryIf: (error) => error.retryable || error.kind === 'unreachable' || error.kind === 'timeout' },
    );
  }

  /** One turn as an async iterable: `answer`'s events, pulled. Leaving the loop early lets go of it. */
  async *stream(req: DifyStreamRequest): AsyncGenerator<DifyEvent, void, undefined> {
    const queue: DifyEvent[] = [];
    let wake: (() => void) | undefined;
    let outcome: { ok: true } | { ok: false; error: unknown } | undefined;
    const leave = new AbortController();
    const signal = req.signal ? AbortSignal.any([req.signal, leave.signal]) : leave.signal;
    this.answer({ ...req, signal }, (event) => {
      queue.push(event);
      wake?.();
    }).then(
      () => {
        outcome = { ok: true };
        wake?.();
      },
      (error: unknown) => {
        outcome = { ok: false, error };
        wake?.();
      },
    );
    try {
      for (;;) {
        const event = queue.shift();
        if (event) yield event;
        else if (outcome) {
          if (!outcome.ok) throw outcome.error;
          return;
        } else
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
      }
    } finally {
      if (!outcome) leave.abort();
    }
  }

  /** POST the task's stop (§2.3). Dify answers success even for unknown tasks; the stream's end confirms. */
  async stop(
    taskId: string,
    user: string,
    opts: DifyCallOptions & { appType?: DifyAppType } = {},
  ): Promise<void> {
    const appType = opts.appType ?? this.#appType;
    const id = encodeURIComponent(taskId);
    const path = appType === 'workflow' ? `/workflows/tasks/${id}/stop` : `/chat-messages/${id}/stop`;
    await this.#callJson('POST', path, { user }, opts);
  }

  /** Rate an answer; `null` revokes an earlier rating (§2.4). */
  async feedback(
    messageId: string,
    rating: 'like' | 'dislike' | null,
    user: string,
    content?: string,
    opts: DifyCallOptions = {},
  ): Promise<void> {
    const body: Record<string, unknown> = { rating, user };
    if (content !== undefined) body.content = content;
    await this.#callJson('POST', `/messages/${encodeURIComponent(messageId)}/feedbacks`, body, opts);
  }

  /**
   * The questions the app suggests after an answer (GET /messages/:id/suggested). An app with the
   * feature off answers 400 (a server without the endpoint, 404): none, and the app is not asked again
   * for ten minutes.
   */
  async suggested(messageId: string, user: string, opts: DifyCallOptions = {}): Promise<string[]> {
    if (Date.now() < this.#noSuggestionsUntil) return [];
    const query = new URLSearchParams({ user }).toString();
    let json: unknown;
    try {
      json = await this.#callJson(
        'GET',
        `/messages/${encodeURIComponent(messageId)}/suggested?${query}`,
        undefined,
        opts,
      );
    } catch (error) {
      if (error instanceof DifyError && (error.status === 400 || error.status === 404)) {
        // The app's answer, for the app's key; with a user's own token it may be that user's alone.
        if (!opts.bearer) this.#noSuggestionsUntil = Date.now() + 600_000;
        return [];
      }
      throw error;
    }
    const data = (json as { data?: unknown } | undefined)?.data;
    return Array.isArray(data)
      ? data.filter((q): q is string => typeof q === 'string' && q.trim() !== '').map((q) => q.trim())
      : [];
  }

  /**
   * Download a file of an answer (a tool's image, a workflow's output): only from the Dify server
   * itself (a URL elsewhere, which a tool's output could name, is refused with the code `foreign`:
   * this node fetches nothing a user could point it at), within `maxBytes` (past it, `too_large`).
   * Its URL is signed; no key is sent.
   */
  async download(
    url: string,
    opts: { maxBytes: number; signal?: AbortSignal | undefined },
  ): Promise<{ data: Buffer; contentType?: string | undefined }> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      throw Object.assign(new Error('not a URL'), { code: 'foreign' });
    }
    if (target.origin !== new URL(this.#apiUrl).origin)
      throw Object.assign(new Error(`${target.origin} is not the Dify server`), { code: 'foreign' });
    const res = await request(target, {
      method: 'GET',
      signal: opts.signal ?? null,
      dispatcher: this.#agent,
    });
    if (res.statusCode !== 200) {
      discard(res.body);
      throw Object.assign(new Error(`Dify answered ${res.statusCode} for a file`), { code: 'failed' });
    }
    const length = Number(res.headers['content-length']);
    if (Number.isFinite(length) && length > opts.maxBytes) {
      discard(res.body);
      throw Object.assign(new Error(`the file is ${length} bytes`), { code: 'too_large' });
    }
    try {
      const data = await readBounded(res.body, opts.maxBytes, 'a file of the answer');
      const type = res.headers['content-type'];
      return { data, contentType: Array.isArray(type) ? type[0] : type };
    } catch (error) {
      if (error instanceof BodyTooLargeError)
        throw Object.assign(new Error(error.message), { code: 'too_large' });
      throw error;
    }
  }

  /** GET /info: the app's name and mode. Cheap; good for readiness and diagnostics. */
  async info(opts: DifyCallOptions = {}): Promise<DifyAppInfo> {
    const json = await this.#callJson('GET', '/info', undefined, opts);
    const parsed = appInfoSchema.safeParse(json);
    if (!parsed.success)
      throw new DifyError({
        code: 'http_error',
        status: 200,
        message: 'Dify /info answered an unexpected body',
      });
    return parsed.data;
  }

  /** Upload a file for a later `files: [{transfer_method: 'local_file', upload_file_id}]` (§2.5). */
  async upload(
    file: { data: Uint8Array | Blob; filename: string; contentType: string },
    user: string,
    opts: DifyCallOptions = {},
  ): Promise<DifyUploadedFile> {
    const json = await this.#withRetry(opts.signal, async () => {
      const form = new FormData();
      const blob =
        file.data instanceof Blob
          ? file.data
          : new Blob([new Uint8Array(file.data)], { type: file.contentType });
      form.append('file', blob, file.filename);
      form.append('user', user);
      const res = await this.#send('POST', '/files/upload', form, 'application/json', opts);
      return this.#readJson(res, '/files/upload');
    });
    const parsed = uploadedFileSchema.safeParse(json);
    if (!parsed.success)
      throw new DifyError({
        code: 'http_error',
        status: 201,
        message: 'Dify /files/upload answered an unexpected body',
      });
    return parsed.data;
  }

  /** Close the connection pool; in-flight requests finish first. */
  async close(): Promise<void> {
    if (this.#streams !== this.#agent) await this.#streams.close();
    await this.#agent.close();
  }

  #runBody(req: DifyStreamRequest, conversationId: string | undefined): Record<string, unknown> {
    const body: Record<string, unknown> =
      this.#appType === 'workflow'
        ? // A workflow has no query field: the message goes into its inputs (§2.2).
          {
            inputs: { ...req.inputs, [this.#queryVariable]: req.query },
            response_mode: 'streaming',
            user: req.user,
          }
        : {
            inputs: req.inputs ?? {},
            query: req.query,
            response_mode: 'streaming',
            user: req.user,
            auto_generate_name: true,
          };
    if (conversationId !== undefined) body.conversation_id = conversationId;
    if (req.files?.length) body.files = req.files;
    return body;
  }

  async #openStream(
    req: DifyStreamRequest,
    conversationId: string | undefined,
  ): Promise<Dispatcher.ResponseData> {
    const path = this.#appType === 'workflow' ? '/workflows/run' : '/chat-messages';
    const body = JSON.stringify(this.#runBody(req, conversationId));
    return this.#withRetry(req.signal, async () =>
      this.#eventStream(await this.#send('POST', path, body, 'text/event-stream', req, 'application/json')),
    );
  }

  /** A 200 event stream as it is; anything else read into the error it stands for (§10.2). */
  async #eventStream(res: Dispatcher.ResponseData): Promise<Dispatcher.ResponseData> {
    const type = res.headers['content-type'];
    const contentType = Array.isArray(type) ? type.join(',') : (type ?? '');
    if (res.statusCode === 200 && contentType.includes('text/event-stream')) return res;
    throw await this.#errorOf(res);
  }

  /**
   * Read a 200 event stream to its end, handing each event on as its bytes arrive ('data' events: no
   * async iteration, no promise per chunk). Settles once: after the terminal event (the rest of the
   * body drained, so that the connection is kept), on a failure, or when the caller lets go.
   */
  #pump(
    res: Dispatcher.ResponseData,
    req: DifyStreamRequest,
    onEvent: (event: DifyEvent) => unknown,
  ): Promise<void> {
    const fold = new AnswerFold({ thinking: this.#thinking, apiUrl: this.#apiUrl });
    const reader = new DifyFrameReader();
    const body = res.body;
    return new Promise<void>((resolve, reject) => {
      let over = false;
      const settle = (outcome: { error?: unknown; letGo?: boolean }): void => {
        if (over) return;
        over = true;
        body.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
        if (fold.done && !body.destroyed) body.dump().catch(() => {});
        else {
          discard(body);
          // The caller let go of the stream before its end (it had enough of the answer).
          if (outcome.letGo) this.#stopTask(fold.ids.taskId, req);
        }
        if ('error' in outcome) reject(outcome.error);
        else resolve();
      };
      const fail = (err: unknown): void => {
        if (over) return;
        const error =
          err instanceof FrameTooLargeError
            ? new DifyError({
                code: 'frame_too_large',
                phase: 'stream',
                message: err.message,
                partial: fold.text,
                ids: { ...fold.ids },
              })
            : fromNetworkError(err, {
                phase: 'stream',
                aborted: req.signal?.aborted ?? false,
                partial: fold.text,
                ids: { ...fold.ids },
              });
        this.#log.warn(
          { code: error.code, kind: error.kind, ...fold.ids, err: error.message },
          'dify: stream failed',
        );
        if (error.code === 'aborted') this.#stopTask(fold.ids.taskId, req);
        settle({ error });
      };
      /** Hand on the events of these frames; true when the answer is over (ended, or let go). */
      const deliver = (frames: DifyFrame[], atEnd: boolean): boolean => {
        for (const frame of frames) {
          for (const event of fold.apply(frame)) if (!handOn(event)) return true;
          if (fold.done) {
            settle({});
            return true;
          }
        }
        if (!atEnd) return false;
        for (const event of fold.eof()) if (!handOn(event)) return true;
        settle({});
        return true;
      };
      const handOn = (event: DifyEvent): boolean => {
        let more: unknown;
        try {
          more = onEvent(event);
        } catch (error) {
          settle({ error, letGo: true });
          return false;
        }
        if (more !== false) return true;
        settle({ letGo: true });
        return false;
      };
      const onData = (chunk: Buffer): void => {
        try {
          deliver(reader.push(chunk), false);
        } catch (err) {
          fail(err);
        }
      };
      const onEnd = (): void => {
        try {
          deliver(reader.end(), true);
        } catch (err) {
          fail(err);
        }
      };
      const onError = (err: unknown): void => fail(err);
      // Closed with neither its end nor an error: destroyed from outside.
      const onClose = (): void => fail(new Error('the response body closed before its end'));
      body.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
    });
  }

  /** Aborting the socket alone may leave the run going and holding its slot (§10.6): stop it too. */
  #stopTask(taskId: string | undefined, req: DifyStreamRequest): void {
    if (!this.#stopOnAbort || taskId === undefined) return;
    this.stop(taskId, req.user, { bearer: req.bearer }).catch((stopErr: unknown) => {
      this.#log.warn({ taskId, err: String(stopErr) }, 'dify: stop after abort failed');
    });
  }

  async #callJson(
    method: 'GET' | 'POST',
    path: string,
    json: Record<string, unknown> | undefined,
    opts: DifyCallOptions,
    policy?: RetryPolicy,
  ): Promise<unknown> {
    const body = json === undefined ? undefined : JSON.stringify(json);
    return this.#withRetry(
      opts.signal,
      async () => {
        const res = await this.#send(
          method,
          path,
          body,
          'application/json',
          opts,
          body ? 'application/json' : undefined,
        );
        return this.#readJson(res, path);
      },
      policy,
    );
  }

  async #readJson(res: Dispatcher.ResponseData, path: string): Promise<unknown> {
    if (res.statusCode < 200 || res.statusCode >= 300) throw await this.#errorOf(res);
    let text: string;
    try {
      text = (await readBounded(res.body, JSON_BODY_BYTES, `Dify (${path})`)).toString('utf8');
    } catch (err) {
      if (!(err instanceof BodyTooLargeError)) throw err;
      // Not retried: the request was taken, only its answer is unreadable.
      throw new DifyError({
        code: 'body_too_large',
        status: res.statusCode,
        kind: 'failed',
        retryable: false,
        message: err.message,
      });
    }
    if (text === '') return {}; // 204 and friends
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw fromHttpResponse(res.statusCode, text);
    }
  }

  async #send(
    method: 'GET' | 'POST',
    path: string,
    body: string | FormData | undefined,
    accept: string,
    opts: DifyCallOptions,
    contentType?: string,
  ): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${opts.bearer ?? this.#apiKey}`,
      accept,
    };
    if (contentType) headers['content-type'] = contentType;
    return request(`${this.#apiUrl}${path}`, {
      method,
      headers,
      body: body ?? null,
      signal: opts.signal ?? null,
      dispatcher: accept === 'text/event-stream' ? this.#streams : this.#agent,
    });
  }

  /** Read a non-success answer (bounded: it may be a large HTML page) into a typed error (§10.2). */
  async #errorOf(res: Dispatcher.ResponseData): Promise<DifyError> {
    let bytes: Buffer;
    try {
      bytes = await readBounded(res.body, ERROR_BODY_BYTES, 'Dify');
    } catch (err) {
      // A longer body is read no further, its start is enough; one cut short leaves the status.
      bytes = err instanceof BodyTooLargeError ? err.head : Buffer.alloc(0);
      if (!res.body.destroyed) discard(res.body);
    }
    return fromHttpResponse(res.statusCode, bytes.toString('utf8'), retryAfterMs(res.headers['retry-after']));
  }

  /** Run `attempt` and try again on retryable errors with exponential backoff and jitter (§6.4). */
  async #withRetry<T>(
    signal: AbortSignal | undefined,
    attempt: () => Promise<T>,
    { attempts = this.#retry.attempts, retryIf = (error: DifyError) => error.retryable }: RetryPolicy = {},
  ): Promise<T> {
    const { baseMs, maxMs } = this.#retry;
    for (let n = 1; ; n++) {
      let error: DifyError;
      try {
        if (signal?.aborted) throw signal.reason;
        return await attempt();
      } catch (err) {
        error = fromNetworkError(err, { phase: 'request', aborted: signal?.aborted ?? false });
      }
      if (!retryIf(error) || n >= attempts) throw error;
      const backoff = Math.min(maxMs, baseMs * 2 ** (n - 1));
      const wait = Math.min(
        maxMs,
        error.retryAfterMs ?? Math.round(backoff / 2 + (Math.random() * backoff) / 2),
      );
      this.#log.warn({ code: error.code, status: error.status, attempt: n, waitMs: wait }, 'dify: retrying');
      try {
        await sleep(wait, undefined, { signal });
      } catch (err) {
        throw fromNetworkError(err, { phase: 'request', aborted: true });
      }
    }
  }
}

/** How a call is tried again: how many tries in all, and which failures another try may mend. */
interface RetryPolicy {
  attempts?: number;
  retryIf?: (error: DifyError) => boolean;
}

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
