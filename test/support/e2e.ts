// The usual end-to-end setting: a fake Dify, one or more service instances sharing a Redis key prefix
// (several instances are several nodes), and a WeCom client for each. `stop()` undoes all of it.
import { type FakeDify, startFakeDify } from './fakeDify.js';
import {
  dropPrefix,
  randomPrefix,
  redisUrl,
  startTestService,
  type TestService,
  testBot,
} from './service.js';
import { WecomClient } from './wecomClient.js';

export interface E2E {
  prefix: string;
  dify: FakeDify;
  nodes: TestService[];
  /** WeCom talking to each node, in the order of `nodes`. */
  clients: WecomClient[];
  stop(): Promise<void>;
}

export async function startE2E(options: {
  name: string;
  /** How many service instances (default 1). */
  nodes?: number;
  /** Settings on top of Redis, the fake Dify and the bot id. */
  env?: Record<string, string>;
  /** Another Redis than the shared one (e.g. one the test stops); its keys are not dropped. */
  redisUrl?: string;
}): Promise<E2E> {
  const prefix = randomPrefix(options.name);
  const dify = await startFakeDify();
  const env = {
    REDIS_URL: options.redisUrl ?? redisUrl,
    DIFY_API_URL: dify.url,
    WECOM_BOT_ID: testBot.botId,
    ...options.env,
  };
  const nodes: TestService[] = [];
  try {
    for (let i = 0; i < (options.nodes ?? 1); i++)
      nodes.push(await startTestService(env, { keyPrefix: prefix }));
  } catch (error) {
    await Promise.all([...nodes.map((n) => n.stop()), dify.stop()]);
    throw error;
  }
  return {
    prefix,
    dify,
    nodes,
    clients: nodes.map((node) => new WecomClient({ baseUrl: node.url, ...testBot })),
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()));
      await dify.stop();
      if (!options.redisUrl) await dropPrefix(prefix);
    },
  };
}
