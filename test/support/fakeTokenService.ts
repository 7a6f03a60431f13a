// A stand-in for the token service (AUTH_API_URL) on a random local port: it issues tokens as the
// contract in src/auth/tokenService.ts says, counts what it was asked, and can be told to misbehave.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeTokenMode =
  /** 200 with a token. */
  | 'ok'
  /** Never answers (until closed). */
  | 'hang'
  | 'error500'
  /** 200 with a body that is not JSON. */
  | 'malformed'
  /** 200 with JSON that lacks `expires_in`. */
  | 'badshape'
  | 'error400';

export interface FakeTokenRequest {
  userid?: unknown;
  account?: unknown;
  secret?: unknown;
  [key: string]: unknown;
}

export interface FakeTokenService {
  readonly url: string;
  /** Every request body received, in order. */
  readonly requests: FakeTokenRequest[];
  /** Every token issued, in order. */
  readonly issued: string[];
  mode: FakeTokenMode;
  /** `expires_in` of issued tokens, seconds. */
  expiresIn: number;
  /** Wait this long before answering (to let concurrent callers overlap). */
  delayMs: number;
  /** Extra `user` object to return with a token; none when undefined. */
  user: Record<string, unknown> | undefined;
  reset(): void;
  close(): Promise<void>;
}

export async function startFakeTokenService(
  init: Partial<Pick<FakeTokenService, 'mode' | 'expiresIn' | 'delayMs' | 'user'>> = {},
): Promise<FakeTokenService> {
  const requests: FakeTokenRequest[] = [];
  const issued: string[] = [];
  const hanging = new Set<ServerResponse>();

  const state = { mode: 'ok' as FakeTokenMode, expiresIn: 7200, delayMs: 0, ...init };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body: FakeTokenRequest = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FakeTokenRequest;
    } catch {
      body = { unparseable: true };
    }
    requests.push(body);
    // A slow token service is the scene some tests set, not a wait.
    if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs));
    const json = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
    };
    switch (state.mode) {
      case 'hang':
        hanging.add(res);
        return;
      case 'error500':
        return json(500, { error: 'internal' });
      case 'error400':
        return json(400, { error: 'unknown account' });
      case 'malformed':
        return json(200, '{"token": "abc", "expires_in": 72');
      case 'badshape':
        return json(200, { token: 'tok-without-expiry' });
      default: {
        const token = `tok-${issued.length + 1}-${randomBytes(8).toString('hex')}`;
        issued.push(token);
        return json(200, { token, expires_in: state.expiresIn, ...(state.user ? { user: state.user } : {}) });
      }
    }
  }

  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/token`,
    requests,
    issued,
    get mode() {
      return state.mode;
    },
    set mode(m) {
      state.mode = m;
    },
    get expiresIn() {
      return state.expiresIn;
    },
    set expiresIn(s) {
      state.expiresIn = s;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms) {
      state.delayMs = ms;
    },
    get user() {
      return state.user;
    },
    set user(u) {
      state.user = u;
    },
    reset() {
      requests.length = 0;
      issued.length = 0;
      state.mode = 'ok';
      state.delayMs = 0;
      state.expiresIn = 7200;
      state.user = undefined;
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
