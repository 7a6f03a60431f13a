// `replay --url`: a stream read from a running service's inspector API instead of from Redis. It is
// the only way into the streams of a service that keeps them in its own memory (the demo, a node
// without REDIS_URL). Every failure is a sentence saying what to do, never a stack.
import { request } from 'undici';
import { z } from 'zod';
import { parseEvent } from '../machines/index.js';
import type { Lease, StoredEvent } from '../store/port.js';

const TIMEOUT_MS = 10_000;

const eventsSchema = z.object({
  now: z.number(),
  lease: z.object({ node: z.string(), until: z.number() }).nullable(),
  events: z.array(z.object({ seq: z.number().int().positive(), id: z.string(), event: z.unknown() })),
});

const detailSchema = z.looseObject({ state: z.string(), finished: z.boolean() });

const errorSchema = z.looseObject({ error: z.string(), message: z.string() });

export interface ServiceStream {
  /** The service's clock when it answered: leases are read against it. */
  now: number;
  lease: Lease | null;
  events: StoredEvent[];
}

export type Read<T> = { ok: true; value: T } | { ok: false; problem: string; missing: boolean };

/** `http://host:port`, from what a user may paste: a trailing slash or `/inspector` is dropped. */
export function serviceBase(url: string): string | undefined {
  if (!/^https?:\/\/[^/\s]+/.test(url)) return undefined;
  return url.replace(/\/+$/, '').replace(/\/inspector$/, '');
}

export class InspectorSource {
  readonly #base: string;
  readonly #token: string | undefined;

  constructor(base: string, token?: string) {
    this.#base = base;
    this.#token = token;
  }

  /** The stream's events and lease, as the service's store holds them. */
  async events(streamId: string): Promise<Read<ServiceStream>> {
    const read = await this.#get(streamId, '/events', eventsSchema);
    if (!read.ok) return read;
    const { now, lease, events } = read.value;
    const parsed = events.map(({ seq, id, event }) => ({ seq, id, event: parseEvent(event) }));
    return { ok: true, value: { now, lease, events: parsed } };
  }

  /** A stream's state and whether it is finished (for the one a queued stream waits for). */
  async state(streamId: string): Promise<Read<{ state: string; finished: boolean }>> {
    return this.#get(streamId, '', detailSchema);
  }

  async #get<T>(streamId: string, tail: string, schema: z.ZodType<T>): Promise<Read<T>> {
    const url = `${this.#base}/inspector/api/streams/${encodeURIComponent(streamId)}${tail}`;
    const fail = (problem: string, missing = false): Read<T> => ({ ok: false, problem, missing });
    // undici rather than fetch: fetch refuses some ports (6000, 10080…) a service may well listen on.
    let status: number;
    let text: string;
    try {
      const res = await request(url, {
        headers: {
          accept: 'application/json',
          ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
        },
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (error) {
      return fail(`cannot reach ${this.#base}: ${reasonOf(error)} (is the service running there?)`);
    }
    const body = jsonOf(text);
    if (status >= 200 && status < 300) {
      const parsed = schema.safeParse(body);
      return parsed.success
        ? { ok: true, value: parsed.data }
        : fail(`${this.#base} answered ${url} with something that is not the inspector's JSON`);
    }
    const message = errorSchema.safeParse(body).data?.message;
    if (status === 401)
      return fail(
        `the inspector at ${this.#base} wants its token: set INSPECTOR_TOKEN (environment or .env) as the service has it`,
      );
    // The inspector answers JSON, its misses too; a plain 404 is the service without it.
    if (status === 404 && message === undefined)
      return fail(`${this.#base} does not serve the inspector: start the service with INSPECTOR=1`);
    if (status === 404 && message?.startsWith('no such stream'))
      return fail(`no stream ${streamId} at ${this.#base}: it does not exist, or it expired`, true);
    if (status === 404)
      return fail(`the service at ${this.#base} is older than this command: it has no ${url}`);
    return fail(`${this.#base} answered HTTP ${status}${message ? `: ${message}` : ''}`);
  }
}

function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The socket's code (ECONNREFUSED…) when there is one, else the message. */
function reasonOf(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return `no answer in ${TIMEOUT_MS / 1000} s`;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && !code.startsWith('UND_ERR')) return code;
  return error instanceof Error ? error.message : String(error);
}
