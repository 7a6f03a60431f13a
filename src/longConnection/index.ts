// The long connections of a node: one BotConnection per long-connection bot (connection.ts), kept in
// step with the bots served (a reload adds, replaces or drops them), their state for /readyz, and the
// long connection's side of the delivery port: what an answer's bubble could not show goes over the
// bot's connection as a message of its own, from whichever node holds it.
import { randomBytes } from 'node:crypto';
import type { WSClient, WSClientOptions } from '@wecom/aibot-node-sdk';
import type { StreamView } from '../machines/index.js';
import type { Runner } from '../runner/runner.js';
import type { StreamStore } from '../store/port.js';
import { BotConnection, type BotConnectionDeps, type ConnectionBot, conversationOf } from './connection.js';
import type { ConnectionStatus } from './state.js';

export type { ConnectionBot, ConnectionTuning } from './connection.js';
export { type ConnectionState, memoryConnectionState, redisConnectionState } from './state.js';

/** What the node's connections share: a connection's own deps but its bot and its stream lookup. */
export type LongConnectionsDeps = Omit<BotConnectionDeps, 'bot' | 'runner' | 'streamOf' | 'makeClient'> & {
  runner: Runner;
  store: Pick<StreamStore, 'load'>;
  /** The SDK's client; loaded only where a bot uses the long connection. */
  makeClient?: (options: WSClientOptions) => WSClient;
};

/** What /readyz says of a bot. */
export interface BotReadiness {
  mode: 'callback' | 'long-connection';
  connected?: boolean;
  holder?: string | null;
  since?: number | null;
  problem?: string;
}

/** How long a rest handed to another node's connection is waited for. */
const REST_WAIT_MS = 15_000;

export class LongConnections {
  readonly #d: LongConnectionsDeps;
  readonly #connections = new Map<string, { key: string; connection: BotConnection }>();
  /** When each bot was first served here: a bot never connected counts as down from then. */
  readonly #servedSince = new Map<string, number>();
  #makeClient: ((options: WSClientOptions) => WSClient) | undefined;

  constructor(deps: LongConnectionsDeps) {
    this.#d = deps;
    this.#makeClient = deps.makeClient;
  }

  /** Serve these long-connection bots from now on: new ones start, changed ones restart, gone ones stop. */
  async update(bots: readonly ConnectionBot[]): Promise<void> {
    if (bots.length > 0 && !this.#makeClient) {
      // The SDK (and its HTTP client) weighs a few MB: loaded only where a bot needs it.
      const { WSClient: Client } = await import('@wecom/aibot-node-sdk');
      this.#makeClient = (options) => new Client(options);
    }
    const wanted = new Map(bots.map((b) => [b.id, b]));
    for (const [id, held] of this.#connections) {
      const bot = wanted.get(id);
      if (bot && JSON.stringify(bot) === held.key) continue;
      this.#connections.delete(id);
      await held.connection.close();
    }
    for (const bot of bots) {
      if (this.#connections.has(bot.id)) continue;
      const connection = new BotConnection({
        ...this.#d,
        bot,
        streamOf: async (streamId) => (await this.#d.store.load(streamId))?.view.context,
        makeClient: this.#makeClient!,
      });
      this.#connections.set(bot.id, { key: JSON.stringify(bot), connection });
      if (!this.#servedSince.has(bot.id)) this.#servedSince.set(bot.id, Date.now());
      connection.start();
    }
  }

  /** An answer changed on this node: its pusher, if this node pushes it, looks now. */
  recorded(streamId: string, view: StreamView): void {
    if (!view.context.replyTo) return;
    this.#connections.get(view.context.bot)?.connection.nudge(streamId);
  }

  /**
   * What the bubble could not show, sent over the bot's connection as a message of its own, once:
   * directly where this node holds it, else handed to the node that does, and waited for.
   */
  async sendRest(view: StreamView, markdown: string): Promise<void> {
    const c = view.context;
    const message = {
      id: randomBytes(9).toString('base64url'),
      onceKey: `rest:${c.streamId}`,
      ...conversationOf(c),
      markdown,
    };
    const here = this.#connections.get(c.bot)?.connection;
    if (here?.holding) return here.send(message);
    await this.#d.state.enqueue(c.bot, message);
    for (const deadline = Date.now() + REST_WAIT_MS; Date.now() < deadline; ) {
      const result = await this.#d.state.result(message.id);
      if (result === 'sent') return;
      if (result) throw new Error(`the connection's node could not send it (${result})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error('no node holding the connection sent it in time');
  }

  /** Each long-connection bot's state, as the cluster knows it (who holds it, since when, why not). */
  async readiness(): Promise<Record<string, BotReadiness & { downForMs?: number }>> {
    const out: Record<string, BotReadiness & { downForMs?: number }> = {};
    await Promise.all(
      [...this.#connections.keys()].map(async (id) => {
        const status: ConnectionStatus | undefined = await this.#d.state.status(id).catch(() => undefined);
        const connected = status?.connected ?? false;
        const downSince = connected
          ? undefined
          : (status?.lastConnectedAt ?? this.#servedSince.get(id) ?? Date.now());
        out[id] = {
          mode: 'long-connection',
          connected,
          holder: status?.holder ?? null,
          since: status?.since ?? null,
          ...(status?.problem && !connected ? { problem: status.problem } : {}),
          ...(downSince === undefined ? {} : { downForMs: Date.now() - downSince }),
        };
      }),
    );
    return out;
  }

  async close(): Promise<void> {
    const all = [...this.#connections.values()];
    this.#connections.clear();
    await Promise.allSettled(all.map((held) => held.connection.close()));
  }
}
