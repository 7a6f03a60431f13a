// The bots a deployment serves, from WECOM_BOTS_FILE (YAML or JSON): each bot's WeCom credentials,
// its Dify app, its authentication, its texts and its mention name. What a bot leaves out comes from
// the environment's bot settings (DIFY_API_URL, DIFY_APP_TYPE, AUTH_MODE, WELCOME_TEXT…), which are
// defaults there; what is about the deployment (Redis, MySQL, the port, TTLs, leases) stays in the
// environment. `${NAME}` in a value is the environment variable NAME, so that secrets stay out of the
// file. Every problem is one line naming the bot and the field; a value is never printed.
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { failureCodes } from './machines/failures.js';
import { defaultTexts, type Texts } from './machines/texts.js';

/** What a user of the bot reads, where it says otherwise than the defaults (machines/texts.ts). */
export type TextOverrides = Partial<Omit<Texts, 'failures'>> & { failures?: Partial<Texts['failures']> };

/** How a bot's Dify app is reached and asked. */
export interface BotDify {
  apiUrl: string;
  apiKey: string;
  appType: 'chat' | 'workflow';
  timeoutMs: number;
  /** Dify input variable ← a field of the authenticated user. */
  inputs: Record<string, InputSource>;
  bearer: 'app_key' | 'user_token';
}

export type InputSource = 'userid' | 'id' | 'name' | 'department' | 'token';
export const inputSources = ['userid', 'id', 'name', 'department', 'token'] as const;

export type AuthMode = 'none' | 'allowlist' | 'directory';

/** One bot: everything about it that may differ from another bot of the same deployment. */
export interface BotConfig {
  /** `[a-z0-9-]{1,32}`: names the bot in routes (`/wecom/callback/{id}`), keys, logs and metrics. */
  id: string;
  /** The name it is @mentioned by in group chats (the mention is taken off the question). */
  name?: string | undefined;
  /** When set, callbacks whose `aibotid` differs are refused. */
  aibotid?: string | undefined;
  /**
   * How WeCom reaches the bot: `callback`, WeCom POSTs to our URL (its Token and EncodingAESKey), or
   * `long-connection`, we dial out to WeCom over a WebSocket (its BotID and Secret).
   */
  mode: 'callback' | 'long-connection';
  /** Callback (API) mode: the Token and EncodingAESKey of the bot's callback URL. */
  callback?: { token: string; encodingAESKey: string } | undefined;
  /** Long-connection mode: the bot's BotID and Secret, and WeCom's WebSocket endpoint. */
  longConnection?: LongConnectionSettings | undefined;
  dify: BotDify;
  auth: { mode: AuthMode; deniedText?: string | undefined };
  welcomeText: string;
  /**
   * `dify`: the welcome is the Dify app's opening statement and suggested questions (its
   * `/parameters`), `welcomeText` where the app has none or cannot be reached in time; `text`: always
   * `welcomeText`.
   */
  welcome: 'dify' | 'text';
  /** A reasoning model's thinking (`<think>`, Dify's reasoning and agent thoughts): shown in WeCom's folding block, or hidden. */
  thinking: 'show' | 'hide';
  texts: TextOverrides;
}

export interface LongConnectionSettings {
  /** The bot's id: the `aibotid` of its messages. */
  botId: string;
  secret: string;
  /** `wss://openws.work.weixin.qq.com` unless a private deployment names its own (`ws://` for tests). */
  url: string;
}

/** The bot settings of the environment: the one bot without a file, the defaults with one. */
export interface BotDefaults {
  /** WECOM_WS_URL: the long connection's endpoint, where a bot names none. */
  wsUrl: string;
  name?: string | undefined;
  dify: Omit<BotDify, 'apiKey'>;
  auth: { mode: AuthMode; deniedText?: string | undefined };
  welcomeText: string;
  welcome: 'dify' | 'text';
  thinking: 'show' | 'hide';
}

/** What the checks that span a bot's settings need of the deployment. */
export interface Deployment {
  mysqlUrl?: string | undefined;
  authApiUrl?: string | undefined;
}

export type BotsResult = { ok: true; bots: BotConfig[] } | { ok: false; problems: string[] };

const BOT_ID = /^[a-z0-9-]{1,32}$/;
const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });
const text = z.string().min(1, 'must not be empty');
export const wsUrl = z.url({ protocol: /^wss?$/, error: 'must be a wss:// (or ws://) URL' });

const textKeys = Object.keys(defaultTexts).filter((k) => k !== 'failures') as Array<
  Exclude<keyof Texts, 'failures'>
>;
const textsSchema = z.strictObject({
  ...Object.fromEntries(textKeys.map((k) => [k, text.optional()])),
  failures: z.strictObject(Object.fromEntries(failureCodes.map((c) => [c, text.optional()]))).optional(),
});

const botSchema = z.strictObject({
  id: z.string().regex(BOT_ID, 'must be 1 to 32 of a-z, 0-9 and -'),
  name: text.optional(),
  aibotid: text.optional(),
  callback: z
    .strictObject({
      token: z.string({ error: "required: the bot's callback Token" }).min(1, 'required'),
      encodingAesKey: z
        .string({ error: "required: the bot's EncodingAESKey" })
        .regex(/^[A-Za-z0-9]{43}$/, 'must be exactly 43 characters of A-Z, a-z and 0-9'),
    })
    .optional(),
  longConnection: z
    .strictObject({
      botId: z.string({ error: "required: the bot's BotID" }).min(1, 'required'),
      secret: z.string({ error: "required: the bot's Secret" }).min(1, 'required'),
      url: wsUrl.optional(),
    })
    .optional(),
  dify: z.strictObject({
    apiUrl: httpUrl.optional(),
    apiKey: z.string({ error: "required: the Dify app's API key (app-…)" }).min(1, 'required'),
    appType: z.enum(['chat', 'workflow']).optional(),
    timeoutSeconds: z.number().int().min(5).max(3600).optional(),
    inputs: z.record(z.string(), z.enum(inputSources)).optional(),
    bearer: z.enum(['app_key', 'user_token']).optional(),
  }),
  auth: z
    .strictObject({
      mode: z.enum(['none', 'allowlist', 'directory']).optional(),
      deniedText: text.optional(),
    })
    .optional(),
  welcomeText: text.optional(),
  welcome: z.enum(['dify', 'text']).optional(),
  thinking: z.enum(['show', 'hide']).optional(),
  texts: textsSchema.optional(),
});

const fileSchema = z.strictObject({
  bots: z.array(z.unknown(), { error: 'must be a list of bots' }).min(1, 'must list at least one bot'),
});

type BotEntry = z.infer<typeof botSchema>;

/**
 * The bots of a file's text (YAML, or JSON, which YAML reads too), its `${NAME}`s taken from `env`
 * and what each leaves out from `defaults`. `where` names the file in problems.
 */
export function parseBotsFile(
  source: string,
  env: Record<string, string | undefined>,
  defaults: BotDefaults,
  deployment: Deployment,
  where = 'WECOM_BOTS_FILE',
): BotsResult {
  let document: unknown;
  try {
    document = parseYaml(source);
  } catch (error) {
    const line = error instanceof YAMLParseError ? error.linePos?.[0]?.line : undefined;
    const reason = error instanceof YAMLParseError ? error.code : 'unreadable';
    // `{ apiKey: ${KEY} }` is the likely mistake: in YAML's { } a ${NAME} must be quoted.
    const text = line ? source.split('\n')[line - 1] : undefined;
    const hint = text && /\{.*\$\{/.test(text) ? ` (inside { }, quote a \${NAME}: '\${NAME}')` : '';
    return {
      ok: false,
      problems: [`${where}: not YAML or JSON${line ? ` (line ${line})` : ''}: ${reason}${hint}`],
    };
  }
  const file = fileSchema.safeParse(document);
  if (!file.success) return { ok: false, problems: issues(file.error, where) };
  const problems: string[] = [];
  const bots: BotConfig[] = [];
  const seen = new Set<string>();
  for (const [i, raw] of file.data.bots.entries()) {
    const id = typeof (raw as { id?: unknown })?.id === 'string' ? (raw as { id: string }).id : undefined;
    const label = `${where}: bots[${i}]${id ? ` (${id})` : ''}`;
    const before = problems.length;
    // A value whose ${NAME} is missing is said once, as that; not again as empty.
    const missing = new Set<string>();
    const substituted = substitute(raw, env, label, [], problems, missing);
    if (id !== undefined) {
      if (seen.has(id)) problems.push(`${label}.id: the id ${id} is given twice`);
      seen.add(id);
    }
    const parsed = botSchema.safeParse(substituted);
    if (!parsed.success) {
      problems.push(...issues(parsed.error, label, missing));
      continue;
    }
    if (problems.length > before) continue;
    if (Boolean(parsed.data.callback) === Boolean(parsed.data.longConnection)) {
      problems.push(
        `${label}: give the bot either callback: (a Token and EncodingAESKey) or longConnection: (a BotID and Secret), ${parsed.data.callback ? 'not both' : 'one of them'}`,
      );
      continue;
    }
    const bot = fromEntry(parsed.data, defaults);
    problems.push(...botProblems(bot, deployment, (field) => `${label}.${field}`));
    bots.push(bot);
  }
  return problems.length > 0 ? { ok: false, problems: [...new Set(problems)] } : { ok: true, bots };
}

/** The checks that span a bot's settings; `name(field)` says where, in the caller's words. */
export function botProblems(
  bot: BotConfig,
  deployment: Deployment,
  name: (field: string) => string,
): string[] {
  const problems: string[] = [];
  const mode = bot.auth.mode;
  if ((mode === 'allowlist' || mode === 'directory') && !deployment.mysqlUrl)
    problems.push(`${name('auth.mode')}: ${mode} needs MYSQL_URL (the directory)`);
  if (mode === 'directory' && !deployment.authApiUrl)
    problems.push(`${name('auth.mode')}: directory needs AUTH_API_URL (the token service)`);
  if (bot.dify.bearer === 'user_token' && mode !== 'directory')
    problems.push(
      `${name('dify.bearer')}: user_token needs auth mode directory (the token comes from the token service)`,
    );
  return problems;
}

function fromEntry(e: BotEntry, d: BotDefaults): BotConfig {
  const { failures, ...rest } = e.texts ?? {};
  const texts: TextOverrides = { ...(rest as Partial<Omit<Texts, 'failures'>>) };
  if (failures) texts.failures = failures as Partial<Texts['failures']>;
  return {
    id: e.id,
    name: e.name ?? d.name,
    // A long-connection bot's messages carry its BotID as their aibotid.
    aibotid: e.aibotid ?? e.longConnection?.botId,
    mode: e.longConnection ? 'long-connection' : 'callback',
    ...(e.callback
      ? { callback: { token: e.callback.token, encodingAESKey: e.callback.encodingAesKey } }
      : {}),
    ...(e.longConnection
      ? {
          longConnection: {
            botId: e.longConnection.botId,
            secret: e.longConnection.secret,
            url: e.longConnection.url ?? d.wsUrl,
          },
        }
      : {}),
    dify: {
      apiUrl: (e.dify.apiUrl ?? d.dify.apiUrl).replace(/\/+$/, ''),
      apiKey: e.dify.apiKey,
      appType: e.dify.appType ?? d.dify.appType,
      timeoutMs: e.dify.timeoutSeconds !== undefined ? e.dify.timeoutSeconds * 1000 : d.dify.timeoutMs,
      inputs: e.dify.inputs ?? d.dify.inputs,
      bearer: e.dify.bearer ?? d.dify.bearer,
    },
    auth: {
      mode: e.auth?.mode ?? d.auth.mode,
      deniedText: e.auth?.deniedText ?? d.auth.deniedText,
    },
    welcomeText: e.welcomeText ?? d.welcomeText,
    welcome: e.welcome ?? d.welcome,
    thinking: e.thinking ?? d.thinking,
    texts,
  };
}

/** `${NAME}` in every string of `value` replaced by the environment's NAME; a missing one is a problem. */
function substitute(
  value: unknown,
  env: Record<string, string | undefined>,
  label: string,
  path: string[],
  problems: string[],
  missing: Set<string>,
): unknown {
  if (typeof value === 'string')
    return value.replace(ENV_REF, (_, name: string) => {
      const found = env[name];
      if (found === undefined || found === '') {
        problems.push(`${label}.${path.join('.')}: \${${name}} is not set in the environment`);
        missing.add(path.join('.'));
        return '';
      }
      return found;
    });
  if (Array.isArray(value))
    return value.map((v, i) => substitute(v, env, label, [...path, String(i)], problems, missing));
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substitute(v, env, label, [...path, k], problems, missing)]),
    );
  return value;
}

/** zod's issues as lines: where, and what is wrong (never the value). */
function issues(error: z.ZodError, label: string, said: ReadonlySet<string> = new Set()): string[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map(String).join('.');
    if (said.has(path)) return [];
    if (issue.code === 'unrecognized_keys')
      return `${label}${path ? `.${path}` : ''}: unknown setting(s) ${issue.keys.join(', ')}`;
    return `${label}${path ? `.${path}` : ''}: ${issue.message}`;
  });
}

/** The texts a bot's users read: the defaults, with the bot's own where it has them. */
export function textsOf(bot: Pick<BotConfig, 'texts' | 'auth'>): Texts {
  const { failures, ...rest } = bot.texts;
  return {
    ...defaultTexts,
    ...(bot.auth.deniedText ? { denied: bot.auth.deniedText } : {}),
    ...rest,
    failures: { ...defaultTexts.failures, ...failures },
  };
}
