// `wecom-dify demo` (`npm run demo`): the whole loop on this machine with no settings and no external
// service. The real service on the in-memory store, the Dify stand-in (src/demo) behind the real Dify
// client, the WeCom simulator in the terminal, and the inspector. Its Token and key are made up per
// run, so printing them (to point `wecom-dify chat` at the demo) gives nothing away. Every command it
// prints runs as printed from the checkout (`npx wecom-dify …`); its streams live in this process, so
// `replay` reaches them through the inspector (`--url`).
import { randomBytes, randomInt } from 'node:crypto';
import { type Config, parseConfig } from '../config.js';
import { type DifyStandIn, startDifyStandIn } from '../demo/difyStandIn.js';
import { createLogger } from '../log.js';
import type { RunningService } from '../service.js';
import { parseCommandArgs } from './args.js';
import { askAll, type ChatSessionOptions, converse, POLL_EVERY_MS, POLL_FOR_MS } from './chatSession.js';
import { type DeliveryReceiver, startDeliveryReceiver } from './deliveries.js';
import { type Io, UsageError } from './io.js';
import { WecomSimulator } from './simulator.js';
import { commandUsage } from './usage.js';

const DEFAULT_PORT = 8080;
const BOT_ID = 'wecom-dify-demo';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** 43 characters of A-Z, a-z, 0-9: what the admin console issues (and config.ts accepts). */
function randomEncodingAESKey(): string {
  return Array.from({ length: 43 }, () => ALNUM[randomInt(ALNUM.length)]).join('');
}

/** The demo's settings; with `bot`, its one bot has that id (as a bots file would give it). */
function demoConfig(
  port: number,
  difyUrl: string,
  token: string,
  key: string,
  apiKey: string,
  bot: string | undefined,
): Config {
  const credentials = bot
    ? { WECOM_BOTS_FILE: 'demo-bots.json' }
    : { WECOM_TOKEN: token, WECOM_ENCODING_AES_KEY: key, DIFY_API_KEY: apiKey };
  const file = JSON.stringify({
    bots: [{ id: bot, callback: { token, encodingAesKey: key }, dify: { apiKey } }],
  });
  const result = parseConfig(
    {
      PORT: String(port),
      HOST: '127.0.0.1',
      ...credentials,
      DIFY_API_URL: difyUrl,
      DIFY_TIMEOUT_SECONDS: '30',
      INSPECTOR: '1',
      NODE_ID: 'demo',
      // Ending the demo should not wait for an answer in flight.
      DRAIN_SECONDS: '1',
      LOG_LEVEL: 'error',
    },
    () => file,
  );
  if (!result.ok) throw new Error(`the demo's own settings are wrong: ${result.problems.join('; ')}`);
  return result.config;
}

export interface DemoHooks {
  /** Told of SIGINT/SIGTERM so that the demo ends cleanly; returns how to stop listening. */
  onSignal(handler: () => void): () => void;
}

export async function runDemo(args: string[], io: Io, hooks: DemoHooks): Promise<number> {
  const usage = commandUsage.demo;
  const { values, positionals } = parseCommandArgs(
    args,
    {
      port: { type: 'string' },
      user: { type: 'string' },
      bot: { type: 'string' },
      say: { type: 'string', multiple: true },
    },
    usage,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, usage);
  const wanted = values.port === undefined ? DEFAULT_PORT : Number(values.port);
  if (values.port !== undefined && (!/^\d+$/.test(values.port) || wanted > 65535))
    throw new UsageError(`--port takes a port number, not "${values.port}"`, usage);
  const bot = values.bot;
  if (bot !== undefined && !/^[a-z0-9-]{1,32}$/.test(bot))
    throw new UsageError(`--bot takes a bot id (1 to 32 of a-z, 0-9 and -), not "${bot}"`, usage);
  const path = bot ? `/wecom/callback/${bot}` : '/wecom/callback';

  // Listening from the start: a Ctrl-C while starting up still ends the demo cleanly.
  const ended = new AbortController();
  const stopListening = hooks.onSignal(() => ended.abort());
  const token = randomBytes(12).toString('hex');
  const key = randomEncodingAESKey();
  const apiKey = `app-demo-${randomBytes(6).toString('hex')}`;
  let dify: DifyStandIn | undefined;
  let service: RunningService | undefined;
  let deliveries: DeliveryReceiver | undefined;
  try {
    dify = await startDifyStandIn({ apiKey });
    // Logs go to standard error, errors only: the terminal belongs to the chat.
    const logger = createLogger('error', io.stderr);
    const { startService } = await import('../service.js');
    try {
      service = await startService({ config: demoConfig(wanted, dify.url, token, key, apiKey, bot), logger });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      io.err(`demo: port ${wanted} is taken; using a free one`);
      service = await startService({ config: demoConfig(0, dify.url, token, key, apiKey, bot), logger });
    }
    io.out('');
    io.out('wecom-dify demo: everything runs in this process, nothing leaves this machine.');
    io.out(`  service     ${service.url}${path}  (bot ${bot ?? 'default'}, in-memory store, one node)`);
    io.out(`  inspector   ${service.url}/inspector`);
    io.out(`  dify        ${dify.url}  (a stand-in that streams scripted answers)`);
    io.out(`  from another terminal: npx wecom-dify chat --url ${service.url} --token ${token} --key ${key}`);
    io.out('');
    const serviceUrl = service.url;
    const simulator = new WecomSimulator({
      baseUrl: service.url,
      token,
      encodingAESKey: key,
      botId: BOT_ID,
      path,
    });
    deliveries = await startDeliveryReceiver();
    const session: ChatSessionOptions = {
      simulator,
      deliveries,
      sender: { userid: values.user ?? 'demo-user' },
      intervalMs: POLL_EVERY_MS,
      timeoutMs: POLL_FOR_MS,
      write: io.write,
      fail: io.err,
      signal: ended.signal,
      onAnswered: once(({ streamId }) =>
        io.out(`      replay it: npx wecom-dify replay ${streamId} --url ${serviceUrl}`),
      ),
    };
    let code: number;
    if (values.say && values.say.length > 0) code = await askAll(values.say, session);
    else {
      io.out('Type a question and press Enter (try "你好"). Ctrl-D or Ctrl-C ends the demo.');
      code = await converse(io.stdin, io.interactive ? io.stdout : undefined, session);
    }
    io.out('demo: stopping');
    return ended.signal.aborted ? 0 : code;
  } finally {
    stopListening();
    await service?.shutdown();
    await dify?.close();
    await deliveries?.close();
  }
}

/** The hint is for the first answer: the next ones only change the stream id. */
function once<T>(action: (value: T) => void): (value: T) => void {
  let done = false;
  return (value) => {
    if (done) return;
    done = true;
    action(value);
  };
}
