// `wecom-dify demo` (`npm run demo`): the whole loop on this machine with no settings and no external
// service. The real service on the in-memory store, the Dify stand-in (src/demo) behind the real Dify
// client, the WeCom simulator in the terminal, and the inspector. Its Token and key are made up per
// run, so printing them (to point `wecom-dify chat` at the demo) gives nothing away. Every command it
// prints runs as printed from the checkout (`npx wecom-dify …`); its streams live in this process, so
// `replay` reaches them through the inspector (`--url`). With `--long-connection` the service runs in
// WECOM_MODE=long-connection instead, dialling the WeCom long-connection simulator in this process with
// a BotID and Secret made up per run, and the chat goes over that connection.
import { randomBytes, randomInt } from 'node:crypto';
import { type Config, parseConfig } from '../config.js';
import { type DifyStandIn, startDifyStandIn } from '../demo/difyStandIn.js';
import { createLogger } from '../log.js';
import type { RunningService } from '../service.js';
import { parseCommandArgs } from './args.js';
import {
  type Answered,
  askAll,
  type ChatSessionOptions,
  converse,
  POLL_EVERY_MS,
  POLL_FOR_MS,
} from './chatSession.js';
import { type DeliveryReceiver, startDeliveryReceiver } from './deliveries.js';
import { type Io, UsageError } from './io.js';
import { WecomSimulator } from './simulator.js';
import { commandUsage } from './usage.js';
import { WecomWsSimulator } from './wecomWsSimulator.js';

const DEFAULT_PORT = 8080;
const BOT_ID = 'wecom-dify-demo';
/** The service dials the simulator as it starts: a few seconds is ample. */
const SUBSCRIBE_WITHIN_MS = 10_000;
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** 43 characters of A-Z, a-z, 0-9: what the admin console issues (and config.ts accepts). */
function randomEncodingAESKey(): string {
  return Array.from({ length: 43 }, () => ALNUM[randomInt(ALNUM.length)]).join('');
}

/** How WeCom reaches the demo's bot: callbacks to its URL, or its long connection to the simulator. */
type DemoWecom =
  | { mode: 'callback'; token: string; key: string }
  | { mode: 'long-connection'; botId: string; secret: string; url: string };

/** The demo's settings; with `bot`, its one bot has that id (as a bots file would give it). */
function demoConfig(
  port: number,
  difyUrl: string,
  wecom: DemoWecom,
  apiKey: string,
  bot: string | undefined,
): Config {
  const credentials = bot
    ? { WECOM_BOTS_FILE: 'demo-bots.json' }
    : wecom.mode === 'callback'
      ? { WECOM_TOKEN: wecom.token, WECOM_ENCODING_AES_KEY: wecom.key, DIFY_API_KEY: apiKey }
      : {
          WECOM_MODE: 'long-connection',
          WECOM_BOT_ID: wecom.botId,
          WECOM_BOT_SECRET: wecom.secret,
          WECOM_WS_URL: wecom.url,
          DIFY_API_KEY: apiKey,
        };
  const reached =
    wecom.mode === 'callback'
      ? { callback: { token: wecom.token, encodingAesKey: wecom.key } }
      : { longConnection: { botId: wecom.botId, secret: wecom.secret, url: wecom.url } };
  const file = JSON.stringify({ bots: [{ id: bot, ...reached, dify: { apiKey } }] });
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
      'long-connection': { type: 'boolean' },
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
  const longConnection = values['long-connection'] === true;

  // Listening from the start: a Ctrl-C while starting up still ends the demo cleanly.
  const ended = new AbortController();
  const stopListening = hooks.onSignal(() => ended.abort());
  const token = randomBytes(12).toString('hex');
  const key = randomEncodingAESKey();
  const apiKey = `app-demo-${randomBytes(6).toString('hex')}`;
  const wsBot = {
    botId: `demo-bot-${randomBytes(4).toString('hex')}`,
    secret: randomBytes(16).toString('hex'),
  };
  let dify: DifyStandIn | undefined;
  let service: RunningService | undefined;
  let deliveries: DeliveryReceiver | undefined;
  let wecomWs: WecomWsSimulator | undefined;
  try {
    dify = await startDifyStandIn({ apiKey });
    if (longConnection) wecomWs = await WecomWsSimulator.listen(wsBot);
    const wecom: DemoWecom = wecomWs
      ? { mode: 'long-connection', ...wsBot, url: wecomWs.url }
      : { mode: 'callback', token, key };
    // Logs go to standard error, errors only: the terminal belongs to the chat.
    const logger = createLogger('error', io.stderr);
    const { startService } = await import('../service.js');
    try {
      service = await startService({ config: demoConfig(wanted, dify.url, wecom, apiKey, bot), logger });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      io.err(`demo: port ${wanted} is taken; using a free one`);
      service = await startService({ config: demoConfig(0, dify.url, wecom, apiKey, bot), logger });
    }
    // The service dials out at once; it is answering only once subscribed.
    if (wecomWs && !(await wecomWs.waitForSubscriber({ timeoutMs: SUBSCRIBE_WITHIN_MS })))
      throw new Error(
        `the demo's service did not subscribe to ${wecomWs.url} within ${SUBSCRIBE_WITHIN_MS / 1000} s`,
      );
    io.out('');
    io.out('wecom-dify demo: everything runs in this process, nothing leaves this machine.');
    if (wecomWs) {
      io.out(
        `  service     ${service.url}  (bot ${bot ?? 'default'}, long connection, in-memory store, one node)`,
      );
      io.out(`  wecom       ${wecomWs.url}  (the WeCom long-connection simulator, BotID ${wsBot.botId})`);
    } else
      io.out(`  service     ${service.url}${path}  (bot ${bot ?? 'default'}, in-memory store, one node)`);
    io.out(`  inspector   ${service.url}/inspector`);
    io.out(`  dify        ${dify.url}  (a stand-in that streams scripted answers)`);
    // Another chat can reach a callback; the long connection is this process's own.
    if (!wecomWs)
      io.out(
        `  from another terminal: npx wecom-dify chat --url ${service.url} --token ${token} --key ${key}`,
      );
    io.out('');
    const serviceUrl = service.url;
    const common = {
      sender: { userid: values.user ?? 'demo-user' },
      timeoutMs: POLL_FOR_MS,
      write: io.write,
      fail: io.err,
      signal: ended.signal,
      onAnswered: once(({ streamId }: Answered) =>
        io.out(`      replay it: npx wecom-dify replay ${streamId} --url ${serviceUrl}`),
      ),
    };
    let session: ChatSessionOptions;
    if (wecomWs) session = { ...common, connection: wecomWs };
    else {
      deliveries = await startDeliveryReceiver();
      session = {
        ...common,
        simulator: new WecomSimulator({
          baseUrl: service.url,
          token,
          encodingAESKey: key,
          botId: BOT_ID,
          path,
        }),
        deliveries,
        intervalMs: POLL_EVERY_MS,
      };
    }
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
    await wecomWs?.close();
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
