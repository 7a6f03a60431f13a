// Every setting, read once from the environment (and `.env`), validated, typed, passed in.
// Nothing else reads process.env. A problem stops the start with one line per setting, never
// printing a secret's value.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { type BotConfig, type BotDefaults, parseBotsFile, wsUrl } from './botsFile.js';

export type { BotConfig };

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off', ''])
  .transform((v) => ['1', 'true', 'yes', 'on'].includes(v));
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

/** Dify input variable ← a field of the authenticated user. */
const inputSourceSchema = z.enum(['userid', 'id', 'name', 'department', 'token']);

const baseSchema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  // The one bot's credentials; with WECOM_BOTS_FILE each bot has its own there (crossProblems).
  WECOM_TOKEN: z.string().min(1).optional(),
  WECOM_ENCODING_AES_KEY: z
    .string()
    .regex(/^[A-Za-z0-9]{43}$/, 'must be exactly 43 characters of A-Z, a-z and 0-9')
    .optional(),
  WECOM_BOTS_FILE: z.string().min(1).optional(),
  // The one bot's mode: WeCom POSTs to our URL, or we dial out to WeCom (its BotID and Secret).
  WECOM_MODE: z.enum(['callback', 'long-connection']).default('callback'),
  WECOM_BOT_SECRET: z.string().min(1).optional(),
  WECOM_WS_URL: wsUrl.default('wss://openws.work.weixin.qq.com'),
  /** The least time between two frames of one answer on the long connection. */
  WECOM_WS_FRAME_INTERVAL_MS: int(100, 60_000).default(500),
  /** The most frames one answer sends on the long connection, the finishing one included. */
  WECOM_WS_MAX_FRAMES: int(2, 1000).default(80),
  WECOM_BOT_ID: z.string().min(1).optional(),
  WECOM_BOT_NAME: z.string().min(1).optional(),
  CALLBACK_MAX_SKEW_SECONDS: int(10, 7 * 24 * 3600).default(300),
  WELCOME_TEXT: z.string().default('你好，我是 AI 助手，有什么可以帮你？发送 /help 查看可用命令。'),
  /** `dify`: welcome with the Dify app's opening statement and suggested questions; `text`: WELCOME_TEXT. */
  WELCOME: z.enum(['dify', 'text']).default('dify'),
  /** A reasoning model's thinking: in WeCom's folding block, or hidden. */
  THINKING: z.enum(['show', 'hide']).default('show'),
  DIFY_API_URL: httpUrl.default('https://api.dify.ai/v1'),
  DIFY_API_KEY: z.string().min(1).optional(),
  DIFY_APP_TYPE: z.enum(['chat', 'workflow']).default('chat'),
  DIFY_TIMEOUT_SECONDS: int(5, 3600).default(60),
  DIFY_INPUTS: z
    .string()
    .default('{}')
    .transform((raw, ctx) => {
      try {
        return z.record(z.string(), inputSourceSchema).parse(JSON.parse(raw));
      } catch {
        ctx.addIssue({
          code: 'custom',
          message: `must be a JSON object of Dify input name to one of ${inputSourceSchema.options.join(', ')}`,
        });
        return z.NEVER;
      }
    }),
  DIFY_BEARER: z.enum(['app_key', 'user_token']).default('app_key'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional(),
  REDIS_CLUSTER_NODES: z
    .string()
    .refine((v) => parseClusterNodes(v) !== undefined, {
      message: 'must be host:port,host:port (or redis://[user:password@]host:port,… ; rediss:// for TLS)',
    })
    .optional(),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1..64 of A-Z a-z 0-9 _ . : -')
    .default('wd:'),
  HTTP_PROXY: httpUrl.optional(),
  HTTPS_PROXY: httpUrl.optional(),
  NO_PROXY: z.string().optional(),
  AUTH_MODE: z.enum(['none', 'allowlist', 'directory']).default('none'),
  MYSQL_URL: z
    .string()
    .regex(/^mysql:\/\//, 'must be mysql://user:pass@host:3306/db')
    .optional(),
  AUTH_API_URL: httpUrl.optional(),
  AUTH_API_TIMEOUT_MS: int(100, 60_000).default(5000),
  AUTH_SECRET_KEY: z
    .string()
    .refine(
      (v) => Buffer.from(v, 'base64').length === 32,
      'must be 32 bytes in base64 (openssl rand -base64 32)',
    )
    .optional(),
  AUTH_DENIED_TEXT: z.string().optional(),
  STREAM_TTL_SECONDS: int(60, 7 * 24 * 3600).default(1800),
  STREAM_WINDOW_SECONDS: int(5, 3600).default(360),
  WINDOW_MARGIN_SECONDS: int(1, 600).default(30),
  LEASE_SECONDS: int(2, 600).default(15),
  DRAIN_SECONDS: int(0, 3600).default(25),
  ANSWER_TIMEOUT_SECONDS: int(1, 3 * 3600).default(1200),
  ANSWER_MAX_BYTES: int(4096, 16 << 20).default(128 << 10),
  ANSWER_IMAGE_MAX_BYTES: int(0, 10 << 20).default(2 << 20),
  RATE_LIMIT_USER_PER_MINUTE: int(0, 10_000).default(10),
  RATE_LIMIT_CONVERSATION_PER_MINUTE: int(0, 10_000).default(20),
  NODE_ID: z.string().min(1).default(`${hostname()}-${process.pid}`),
  INSPECTOR: bool.default(false),
  INSPECTOR_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Redis is one server or one cluster: both set is a problem (the service's and the tools'). */
function redisChoiceProblem(s: { REDIS_URL?: string; REDIS_CLUSTER_NODES?: string }): string | undefined {
  return s.REDIS_URL && s.REDIS_CLUSTER_NODES
    ? 'REDIS_CLUSTER_NODES: set REDIS_URL or REDIS_CLUSTER_NODES, not both'
    : undefined;
}

/**
 * The checks that span settings, on the raw values with their defaults: they are reported with the
 * problems of single settings, not only once those are fixed.
 */
function crossProblems(env: Record<string, string>): string[] {
  const problems: string[] = [];
  // Without a bots file the environment defines the one bot: its credentials are required, and its
  // settings are checked together here, in the environment's names.
  if (!env.WECOM_BOTS_FILE) {
    if (env.WECOM_MODE === 'long-connection') {
      if (!env.WECOM_BOT_ID)
        problems.push(
          "WECOM_BOT_ID: required when WECOM_MODE=long-connection: the bot's BotID from the WeCom admin console",
        );
      if (!env.WECOM_BOT_SECRET)
        problems.push(
          "WECOM_BOT_SECRET: required when WECOM_MODE=long-connection: the bot's Secret from the WeCom admin console",
        );
    } else {
      if (!env.WECOM_TOKEN)
        problems.push("WECOM_TOKEN: required: the bot's callback Token from the WeCom admin console");
      if (!env.WECOM_ENCODING_AES_KEY)
        problems.push(
          "WECOM_ENCODING_AES_KEY: required: the bot's EncodingAESKey from the WeCom admin console",
        );
    }
    if (!env.DIFY_API_KEY) problems.push("DIFY_API_KEY: required: the Dify app's API key (app-…)");
    const mode = env.AUTH_MODE ?? 'none';
    if ((mode === 'allowlist' || mode === 'directory') && !env.MYSQL_URL)
      problems.push(`MYSQL_URL: required when AUTH_MODE=${mode}`);
    if (mode === 'directory' && !env.AUTH_API_URL)
      problems.push('AUTH_API_URL: required when AUTH_MODE=directory');
    if (env.DIFY_BEARER === 'user_token' && mode !== 'directory')
      problems.push(
        'DIFY_BEARER: user_token needs AUTH_MODE=directory (the token comes from the token service)',
      );
  }
  const redis = redisChoiceProblem(env);
  if (redis) problems.push(redis);
  const window = Number(env.STREAM_WINDOW_SECONDS ?? 360);
  const margin = Number(env.WINDOW_MARGIN_SECONDS ?? 30);
  if (Number.isFinite(window) && Number.isFinite(margin) && margin >= window)
    problems.push('WINDOW_MARGIN_SECONDS: must be less than STREAM_WINDOW_SECONDS');
  // A callback replayed within the tolerance must still find its msgid's dedup key.
  const skew = Number(env.CALLBACK_MAX_SKEW_SECONDS ?? 300);
  const ttl = Number(env.STREAM_TTL_SECONDS ?? 1800);
  if (Number.isFinite(skew) && Number.isFinite(ttl) && skew > ttl)
    problems.push(
      'CALLBACK_MAX_SKEW_SECONDS: must be at most STREAM_TTL_SECONDS (how long a msgid is remembered), so that a replayed callback is refused or deduplicated',
    );
  return problems;
}

type Env = z.infer<typeof baseSchema>;
export type SettingName = keyof Env;

export interface Config {
  port: number;
  host: string;
  nodeId: string;
  logLevel: Env['LOG_LEVEL'];
  /**
   * The bots this deployment serves: those of WECOM_BOTS_FILE, or the one the environment defines
   * (id `default`). Read again on SIGHUP (`reloadBots`).
   */
  bots: BotConfig[];
  /** WECOM_BOTS_FILE, when the bots come from a file. */
  botsFile?: string | undefined;
  wecom: {
    /** How far a signed callback's timestamp may be from this node's clock, either way. */
    maxSkewSeconds: number;
    /** The long connection's frames: the least time between two of one answer, the most per answer. */
    ws: { frameIntervalMs: number; maxFrames: number };
  };
  store: {
    redisUrl?: string | undefined;
    cluster?: ClusterSettings | undefined;
    /** Of every key the store writes (not of the auth keys shared with other systems). */
    prefix: string;
    ttlSeconds: number;
  };
  /** The directory and the token service, shared by the bots that use them. */
  auth: {
    mysqlUrl?: string | undefined;
    apiUrl?: string | undefined;
    apiTimeoutMs: number;
    secretKey?: Buffer | undefined;
  };
  stream: {
    windowMs: number;
    marginMs: number;
    leaseMs: number;
    drainMs: number;
    answerTimeoutMs: number;
    /** The most of an answer that is kept (UTF-8 bytes); Dify is stopped there. */
    answerMaxBytes: number;
    /** The largest image of an answer its bubble shows (bytes); 0 shows none, only their links. */
    imageMaxBytes: number;
  };
  inspector: { enabled: boolean; token?: string | undefined };
  /** New messages let through per sliding minute; 0 = that limit is off. */
  limits: { userPerMinute: number; conversationPerMinute: number };
  /** The proxy outbound HTTP goes through, when the network asks for one. */
  proxy: { httpProxy?: string | undefined; httpsProxy?: string | undefined; noProxy?: string | undefined };
}

/** The names of the settings that hold secrets: never printed. */
export const secretSettings = [
  'WECOM_TOKEN',
  'WECOM_ENCODING_AES_KEY',
  'WECOM_BOT_SECRET',
  'DIFY_API_KEY',
  'AUTH_SECRET_KEY',
  'INSPECTOR_TOKEN',
];

/** Every setting's name, for docs and deployment checks. */
export const settingNames = Object.keys(baseSchema.shape);

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

// An empty value counts as unset, as in most twelve-factor tooling.
const cleanEnv = (env: Record<string, string | undefined>) =>
  Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));

function problemsOf(error: z.ZodError): string[] {
  const problems = error.issues.map((issue) => {
    const name = String(issue.path[0] ?? 'settings');
    // zod messages never contain the input value; keep it that way for secrets.
    return `${name}: ${issue.message}`;
  });
  return [...new Set(problems)];
}

/**
 * Some settings only, validated the same way: for the commands that need a few of them (`streams`
 * needs the store, `chat` the bot's Token and key), not the whole service's. A command that reads
 * Redis gets the service's check that only one Redis is named, with the other problems.
 */
export function parseSettings<K extends SettingName>(
  env: Record<string, string | undefined>,
  names: readonly K[],
): { ok: true; settings: Pick<Env, K> } | { ok: false; problems: string[] } {
  const mask: Partial<Record<SettingName, true>> = Object.fromEntries(names.map((name) => [name, true]));
  const raw = cleanEnv(env);
  const parsed = (baseSchema.pick(mask) as z.ZodType<unknown>).safeParse(raw);
  const redis = mask.REDIS_URL && mask.REDIS_CLUSTER_NODES ? redisChoiceProblem(raw) : undefined;
  const problems = [...(parsed.success ? [] : problemsOf(parsed.error)), ...(redis ? [redis] : [])];
  if (!parsed.success || problems.length > 0) return { ok: false, problems };
  return { ok: true, settings: parsed.data as Pick<Env, K> };
}

/** The seed nodes of a Redis Cluster, and the credentials and TLS the first `redis[s]://` one gives. */
export interface ClusterSettings {
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  tls: boolean;
}

/**
 * `host:port,host:port`, or the same as `redis://[user:password@]host:port` (`rediss://` for TLS),
 * whose first credentials apply to every node (a cluster has one). Undefined when malformed.
 */
export function parseClusterNodes(value: string): ClusterSettings | undefined {
  const settings: ClusterSettings = { nodes: [], tls: false };
  for (const [i, entry] of value.split(',').entries()) {
    const url = /^rediss?:\/\//.test(entry) ? safeUrl(entry) : safeUrl(`redis://${entry}`);
    if (!url?.hostname || !/^\d+$/.test(url.port) || (url.pathname !== '' && url.pathname !== '/'))
      return undefined;
    settings.nodes.push({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) });
    if (i === 0) {
      settings.tls = url.protocol === 'rediss:';
      if (url.username) settings.username = decodeURIComponent(url.username);
      if (url.password) settings.password = decodeURIComponent(url.password);
    }
  }
  return settings.nodes.length > 0 ? settings : undefined;
}

function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/** The directory and token-service settings, for the service and the admin commands. */
export function authSettings(
  e: Pick<Env, 'MYSQL_URL' | 'AUTH_API_URL' | 'AUTH_API_TIMEOUT_MS' | 'AUTH_SECRET_KEY'>,
): Config['auth'] {
  return {
    mysqlUrl: e.MYSQL_URL,
    apiUrl: e.AUTH_API_URL,
    apiTimeoutMs: e.AUTH_API_TIMEOUT_MS,
    secretKey: e.AUTH_SECRET_KEY ? Buffer.from(e.AUTH_SECRET_KEY, 'base64') : undefined,
  };
}

/**
 * The bot settings of an environment (the defaults of what it leaves unset): what a bot of the bots
 * file leaves out. Throws on a malformed setting, which `parseConfig` would have named.
 */
export function botDefaultsOf(env: Record<string, string | undefined>): BotDefaults {
  return botDefaults(baseSchema.parse(cleanEnv(env)));
}

/** The environment's bot settings: what a bot of the file leaves out. */
function botDefaults(e: Env): BotDefaults {
  return {
    name: e.WECOM_BOT_NAME,
    dify: {
      apiUrl: e.DIFY_API_URL.replace(/\/+$/, ''),
      appType: e.DIFY_APP_TYPE,
      timeoutMs: e.DIFY_TIMEOUT_SECONDS * 1000,
      inputs: e.DIFY_INPUTS,
      bearer: e.DIFY_BEARER,
    },
    auth: { mode: e.AUTH_MODE, deniedText: e.AUTH_DENIED_TEXT },
    welcomeText: e.WELCOME_TEXT,
    welcome: e.WELCOME,
    thinking: e.THINKING,
    wsUrl: e.WECOM_WS_URL,
  };
}

/** The bot the environment defines when there is no bots file (its credentials checked present). */
function environmentBot(e: Env): BotConfig {
  const d = botDefaults(e);
  return {
    id: 'default',
    name: d.name,
    aibotid: e.WECOM_BOT_ID,
    ...(e.WECOM_MODE === 'long-connection'
      ? {
          mode: 'long-connection' as const,
          longConnection: {
            botId: e.WECOM_BOT_ID ?? '',
            secret: e.WECOM_BOT_SECRET ?? '',
            url: e.WECOM_WS_URL,
          },
        }
      : {
          mode: 'callback' as const,
          callback: { token: e.WECOM_TOKEN ?? '', encodingAESKey: e.WECOM_ENCODING_AES_KEY ?? '' },
        }),
    dify: { ...d.dify, apiKey: e.DIFY_API_KEY ?? '' },
    auth: d.auth,
    welcomeText: d.welcomeText,
    welcome: d.welcome,
    thinking: d.thinking,
    texts: {},
  };
}

/** How the bots file is read: `fs.readFileSync` but for tests. */
export type ReadFile = (path: string) => string;
const readUtf8: ReadFile = (path) => readFileSync(path, 'utf8');

/**
 * The bots of the settings: WECOM_BOTS_FILE's, or the environment's one. Used at start and again on
 * SIGHUP (the file may have changed; the environment has not).
 */
export function loadBots(
  env: Record<string, string | undefined>,
  readFile: ReadFile = readUtf8,
): { ok: true; bots: BotConfig[] } | { ok: false; problems: string[] } {
  const raw = cleanEnv(env) as Record<string, string>;
  const parsed = baseSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, problems: problemsOf(parsed.error) };
  const e = parsed.data;
  if (!e.WECOM_BOTS_FILE) return { ok: true, bots: [environmentBot(e)] };
  let source: string;
  try {
    source = readFile(e.WECOM_BOTS_FILE);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    return { ok: false, problems: [`WECOM_BOTS_FILE: cannot read ${e.WECOM_BOTS_FILE} (${code})`] };
  }
  return parseBotsFile(source, env, botDefaults(e), {
    mysqlUrl: e.MYSQL_URL,
    authApiUrl: e.AUTH_API_URL,
  });
}

export function storeSettings(
  e: Pick<Env, 'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'REDIS_KEY_PREFIX' | 'STREAM_TTL_SECONDS'>,
): Config['store'] {
  return {
    redisUrl: e.REDIS_URL,
    prefix: e.REDIS_KEY_PREFIX,
    cluster: e.REDIS_CLUSTER_NODES ? parseClusterNodes(e.REDIS_CLUSTER_NODES) : undefined,
    ttlSeconds: e.STREAM_TTL_SECONDS,
  };
}

export function parseConfig(
  env: Record<string, string | undefined>,
  readFile: ReadFile = readUtf8,
): ConfigResult {
  const raw = cleanEnv(env) as Record<string, string>;
  const parsed = baseSchema.safeParse(raw);
  const problems = [...(parsed.success ? [] : problemsOf(parsed.error)), ...crossProblems(raw)];
  const bots = parsed.success && problems.length === 0 ? loadBots(env, readFile) : undefined;
  if (bots && !bots.ok) problems.push(...bots.problems);
  if (!parsed.success || !bots?.ok || problems.length > 0)
    return { ok: false, problems: [...new Set(problems)] };
  const e = parsed.data;
  return {
    ok: true,
    config: {
      port: e.PORT,
      host: e.HOST,
      nodeId: e.NODE_ID,
      logLevel: e.LOG_LEVEL,
      bots: bots.bots,
      botsFile: e.WECOM_BOTS_FILE,
      wecom: {
        maxSkewSeconds: e.CALLBACK_MAX_SKEW_SECONDS,
        ws: { frameIntervalMs: e.WECOM_WS_FRAME_INTERVAL_MS, maxFrames: e.WECOM_WS_MAX_FRAMES },
      },
      store: storeSettings(e),
      auth: authSettings(e),
      stream: {
        windowMs: e.STREAM_WINDOW_SECONDS * 1000,
        marginMs: e.WINDOW_MARGIN_SECONDS * 1000,
        leaseMs: e.LEASE_SECONDS * 1000,
        drainMs: e.DRAIN_SECONDS * 1000,
        answerTimeoutMs: e.ANSWER_TIMEOUT_SECONDS * 1000,
        answerMaxBytes: e.ANSWER_MAX_BYTES,
        imageMaxBytes: e.ANSWER_IMAGE_MAX_BYTES,
      },
      inspector: { enabled: e.INSPECTOR, token: e.INSPECTOR_TOKEN },
      limits: {
        userPerMinute: e.RATE_LIMIT_USER_PER_MINUTE,
        conversationPerMinute: e.RATE_LIMIT_CONVERSATION_PER_MINUTE,
      },
      proxy: { httpProxy: e.HTTP_PROXY, httpsProxy: e.HTTPS_PROXY, noProxy: e.NO_PROXY },
    },
  };
}

/** `.env` in the working directory, under the real environment (which wins). */
export function readEnv(
  processEnv: Record<string, string | undefined>,
  dotenvPath = '.env',
): Record<string, string | undefined> {
  let fromFile: Record<string, string> = {};
  try {
    fromFile = parseEnv(readFileSync(dotenvPath, 'utf8')) as Record<string, string>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return { ...fromFile, ...processEnv };
}
