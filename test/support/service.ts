// Starts the real service in this test process, on a spare port, with its own Redis key prefix, so
// that suites run in parallel on the shared Redis. Two services with the same prefix are two nodes.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { type Config, parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { type RunningService, type ServiceOptions, startService } from '../../src/service.js';

/** The official Go sample's Token and EncodingAESKey (docs/protocol/wecom.md §12). */
export const testBot = {
  token: 'QDG6eK',
  encodingAESKey: 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C',
  botId: 'BOT_TEST',
};

export const redisUrl = 'redis://127.0.0.1:6379';

export function randomPrefix(name: string): string {
  return `wdtest:${name}:${randomBytes(4).toString('hex')}:`;
}

export function testConfig(env: Record<string, string | undefined> = {}): Config {
  const result = parseConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    WECOM_TOKEN: testBot.token,
    WECOM_ENCODING_AES_KEY: testBot.encodingAESKey,
    DIFY_API_KEY: 'app-test',
    DIFY_API_URL: 'http://127.0.0.1:9/v1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    NODE_ID: `node-${randomBytes(3).toString('hex')}`,
    // Tests send many messages as one user; the limits have tests of their own.
    RATE_LIMIT_USER_PER_MINUTE: '0',
    RATE_LIMIT_CONVERSATION_PER_MINUTE: '0',
    ...env,
  });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.config;
}

export interface TestService extends RunningService {
  config: Config;
  stop(): Promise<void>;
}

export async function startTestService(
  env: Record<string, string | undefined> = {},
  options: Partial<Omit<ServiceOptions, 'config' | 'logger'>> & { logTo?: NodeJS.WritableStream } = {},
): Promise<TestService> {
  const config = testConfig(env);
  const logger = createLogger(config.logLevel, options.logTo);
  const service = await startService({ config, logger, ...options });
  return { ...service, config, stop: () => service.shutdown() };
}

/** Delete every key under a prefix (the suite's own). */
export async function dropPrefix(prefix: string, url = redisUrl): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
