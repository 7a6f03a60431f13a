// The bots file as an operator writes it: what each bot leaves out comes from the environment, `${NAME}`
// from the environment too, and every mistake is one line naming the bot and the field, never a value.
import { describe, expect, it } from 'vitest';
import { parseBotsFile } from './botsFile.js';
import { loadBots, parseConfig } from './config.js';
import { defaultTexts } from './machines/texts.js';

const key = (c: string) => c.repeat(43);
const env = {
  HR_TOKEN: 'hr-token-value',
  HR_KEY: key('h'),
  HR_DIFY: 'app-hr-secret',
  IT_TOKEN: 'it-token-value',
  IT_KEY: key('i'),
  IT_DIFY: 'app-it-secret',
};
const defaults = {
  name: 'AI 助手',
  dify: {
    apiUrl: 'https://dify.example.com/v1',
    appType: 'chat' as const,
    timeoutMs: 60_000,
    inputs: {},
    bearer: 'app_key' as const,
  },
  auth: { mode: 'none' as const },
  welcomeText: '你好',
  welcome: 'dify' as const,
  thinking: 'show' as const,
  wsUrl: 'wss://openws.work.weixin.qq.com',
};
const deployment = { mysqlUrl: 'mysql://u@h/db', authApiUrl: 'https://auth.example.com' };

const twoBots = `
bots:
  - id: hr
    name: HR 助手
    aibotid: aib-hr-123
    callback:
      token: \${HR_TOKEN}
      encodingAesKey: \${HR_KEY}
    dify:
      apiUrl: https://hr.example.com/v1/
      apiKey: \${HR_DIFY}
      appType: workflow
      timeoutSeconds: 120
      inputs: { user_name: name }
    auth: { mode: allowlist, deniedText: 请找 HR 开通 }
    welcomeText: 你好，我是 HR 助手
    texts:
      thinking: HR 正在想…
      failures: { dify_unreachable: HR 助手暂时不在 }
  - id: it
    callback:
      token: \${IT_TOKEN}
      encodingAesKey: \${IT_KEY}
    dify:
      apiKey: \${IT_DIFY}
`;

const problemsOf = (source: string, over: Record<string, string | undefined> = env) => {
  const result = parseBotsFile(source, over, defaults, deployment);
  if (result.ok) throw new Error('expected problems');
  return result.problems;
};

describe('the bots file', () => {
  it('gives each bot its own settings, the environment’s where it leaves one out', () => {
    const result = parseBotsFile(twoBots, env, defaults, deployment);
    if (!result.ok) throw new Error(result.problems.join('\n'));
    const [hr, it_] = result.bots;
    expect(hr).toEqual({
      id: 'hr',
      name: 'HR 助手',
      aibotid: 'aib-hr-123',
      mode: 'callback',
      callback: { token: 'hr-token-value', encodingAESKey: key('h') },
      dify: {
        apiUrl: 'https://hr.example.com/v1',
        apiKey: 'app-hr-secret',
        appType: 'workflow',
        timeoutMs: 120_000,
        inputs: { user_name: 'name' },
        bearer: 'app_key',
      },
      auth: { mode: 'allowlist', deniedText: '请找 HR 开通' },
      welcomeText: '你好，我是 HR 助手',
      welcome: 'dify',
      thinking: 'show',
      texts: { thinking: 'HR 正在想…', failures: { dify_unreachable: 'HR 助手暂时不在' } },
    });
    expect(it_).toMatchObject({
      id: 'it',
      name: 'AI 助手',
      aibotid: undefined,
      dify: {
        apiUrl: 'https://dify.example.com/v1',
        apiKey: 'app-it-secret',
        appType: 'chat',
        timeoutMs: 60_000,
      },
      auth: { mode: 'none' },
      welcomeText: '你好',
      texts: {},
    });
  });

  it('reads JSON as well', () => {
    const json = JSON.stringify({
      bots: [{ id: 'one', callback: { token: 't', encodingAesKey: key('k') }, dify: { apiKey: 'app-1' } }],
    });
    const result = parseBotsFile(json, {}, defaults, deployment);
    expect(result.ok && result.bots.map((b) => b.id)).toEqual(['one']);
  });

  it('names each variable that is not set, once, and never prints a value', () => {
    const problems = problemsOf(twoBots, { ...env, HR_KEY: undefined, IT_DIFY: '' });
    expect(problems).toEqual([
      `WECOM_BOTS_FILE: bots[0] (hr).callback.encodingAesKey: \${HR_KEY} is not set in the environment`,
      `WECOM_BOTS_FILE: bots[1] (it).dify.apiKey: \${IT_DIFY} is not set in the environment`,
    ]);
    for (const secret of Object.values(env)) expect(problems.join('\n')).not.toContain(secret);
  });

  it('refuses an unknown key, anywhere in a bot', () => {
    const source = twoBots
      .replace('    welcomeText:', '    colour: blue\n    welcomeText:')
      .replace('appType: workflow', 'appType: workflow\n      temperature: 1');
    expect(problemsOf(source).sort()).toEqual([
      'WECOM_BOTS_FILE: bots[0] (hr).dify: unknown setting(s) temperature',
      'WECOM_BOTS_FILE: bots[0] (hr): unknown setting(s) colour',
    ]);
  });

  it('refuses a duplicate id, even when the first has problems of its own', () => {
    const source = `${twoBots}  - id: hr\n    callback: { token: t, encodingAesKey: ${key('x')} }\n    dify: { apiKey: app-x }\n`;
    expect(problemsOf(source)).toEqual(['WECOM_BOTS_FILE: bots[2] (hr).id: the id hr is given twice']);
    const broken = source.replace('appType: workflow', 'appType: agent');
    expect(problemsOf(broken)).toEqual([
      'WECOM_BOTS_FILE: bots[0] (hr).dify.appType: Invalid option: expected one of "chat"|"workflow"',
      'WECOM_BOTS_FILE: bots[2] (hr).id: the id hr is given twice',
    ]);
  });

  it('refuses malformed values, saying what is expected and not what was given', () => {
    const source = `
bots:
  - id: HR_Bot
    callback: { token: '', encodingAesKey: not-a-key-value }
    dify: { apiKey: app-1, apiUrl: 'ftp://dify', timeoutSeconds: 2, inputs: { n: salary } }
    auth: { mode: everyone }
    texts: { thinking: '', nonsense: x, failures: { no_such_code: x } }
`;
    const problems = problemsOf(source);
    expect(problems).toEqual(
      expect.arrayContaining([
        'WECOM_BOTS_FILE: bots[0] (HR_Bot).id: must be 1 to 32 of a-z, 0-9 and -',
        'WECOM_BOTS_FILE: bots[0] (HR_Bot).callback.token: required',
        'WECOM_BOTS_FILE: bots[0] (HR_Bot).callback.encodingAesKey: must be exactly 43 characters of A-Z, a-z and 0-9',
        'WECOM_BOTS_FILE: bots[0] (HR_Bot).dify.apiUrl: must be an http:// or https:// URL',
        expect.stringMatching(/^WECOM_BOTS_FILE: bots\[0\] \(HR_Bot\)\.dify\.timeoutSeconds: /),
        expect.stringMatching(/^WECOM_BOTS_FILE: bots\[0\] \(HR_Bot\)\.dify\.inputs\.n: /),
        expect.stringMatching(/^WECOM_BOTS_FILE: bots\[0\] \(HR_Bot\)\.auth\.mode: /),
        'WECOM_BOTS_FILE: bots[0] (HR_Bot).texts.thinking: must not be empty',
        'WECOM_BOTS_FILE: bots[0] (HR_Bot).texts: unknown setting(s) nonsense',
        'WECOM_BOTS_FILE: bots[0] (HR_Bot).texts.failures: unknown setting(s) no_such_code',
      ]),
    );
    expect(problems.join('\n')).not.toContain('not-a-key-value');
  });

  it('refuses what is not a list of bots, and what is not YAML at all', () => {
    expect(problemsOf('bots: []')).toEqual(['WECOM_BOTS_FILE.bots: must list at least one bot']);
    expect(problemsOf('robots: []')).toEqual(
      expect.arrayContaining([
        'WECOM_BOTS_FILE: unknown setting(s) robots',
        'WECOM_BOTS_FILE.bots: must be a list of bots',
      ]),
    );
    expect(problemsOf('bots: [ {')).toEqual([expect.stringMatching(/^WECOM_BOTS_FILE: not YAML or JSON/)]);
    // The likely slip: a variable in YAML's braces, unquoted.
    const braces = `bots:\n  - id: a\n    dify: { apiKey: \${KEY} }\n`;
    expect(problemsOf(braces)).toEqual([
      `WECOM_BOTS_FILE: not YAML or JSON (line 3): UNEXPECTED_TOKEN (inside { }, quote a \${NAME}: '\${NAME}')`,
    ]);
  });

  it('checks what a bot’s settings need of the deployment', () => {
    const source = `
bots:
  - id: a
    callback: { token: t, encodingAesKey: ${key('a')} }
    dify: { apiKey: app-a, bearer: user_token }
    auth: { mode: directory }
`;
    const result = parseBotsFile(source, {}, defaults, {});
    expect(result.ok ? [] : result.problems).toEqual([
      'WECOM_BOTS_FILE: bots[0] (a).auth.mode: directory needs MYSQL_URL (the directory)',
      'WECOM_BOTS_FILE: bots[0] (a).auth.mode: directory needs AUTH_API_URL (the token service)',
    ]);
  });
});

describe('WECOM_BOTS_FILE in the settings', () => {
  const files: Record<string, string> = { '/etc/bots.yaml': twoBots };
  const read = (path: string) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
    return text;
  };

  it('serves the file’s bots and no default one; the one-bot settings are not needed', () => {
    const result = parseConfig(
      { WECOM_BOTS_FILE: '/etc/bots.yaml', WELCOME_TEXT: '欢迎', MYSQL_URL: 'mysql://u@h/db', ...env },
      read,
    );
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.config.bots.map((b) => b.id)).toEqual(['hr', 'it']);
    expect(result.config.bots[1]?.welcomeText).toBe('欢迎');
    expect(result.config.botsFile).toBe('/etc/bots.yaml');
  });

  it('without it, the environment defines one bot called default, as before', () => {
    const result = parseConfig({ WECOM_TOKEN: 't', WECOM_ENCODING_AES_KEY: key('e'), DIFY_API_KEY: 'app-e' });
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.config.bots).toEqual([
      expect.objectContaining({
        id: 'default',
        callback: { token: 't', encodingAESKey: key('e') },
        texts: {},
      }),
    ]);
  });

  it('a file that cannot be read stops the start, saying which', () => {
    const result = loadBots({ WECOM_BOTS_FILE: '/etc/missing.yaml' }, read);
    expect(result).toEqual({
      ok: false,
      problems: ['WECOM_BOTS_FILE: cannot read /etc/missing.yaml (ENOENT)'],
    });
  });

  it('a bot’s texts are the defaults with its own on top', async () => {
    const { textsOf } = await import('./botsFile.js');
    const result = parseBotsFile(twoBots, env, defaults, deployment);
    if (!result.ok) throw new Error(result.problems.join('\n'));
    const texts = textsOf(result.bots[0]!);
    expect(texts.thinking).toBe('HR 正在想…');
    expect(texts.denied).toBe('请找 HR 开通');
    expect(texts.failures.dify_unreachable).toBe('HR 助手暂时不在');
    expect(texts.failures.dify_timeout).toBe(defaultTexts.failures.dify_timeout);
  });
});

describe('a long-connection bot', () => {
  const withWs = (bot: string) => `bots:\n${bot}`;
  const ws = `  - id: ws\n    longConnection:\n      botId: aib-ws\n      secret: \${WS_SECRET}\n    dify:\n      apiKey: app-ws\n`;

  it('has its BotID and Secret, WECOM_WS_URL unless it names its own, and its BotID as aibotid', () => {
    const result = parseBotsFile(withWs(ws), { WS_SECRET: 's3' }, defaults, deployment);
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.bots[0]).toMatchObject({
      id: 'ws',
      mode: 'long-connection',
      aibotid: 'aib-ws',
      longConnection: { botId: 'aib-ws', secret: 's3', url: 'wss://openws.work.weixin.qq.com' },
    });
    expect(result.bots[0]?.callback).toBeUndefined();
    const own = parseBotsFile(
      withWs(ws.replace('      secret:', '      url: ws://127.0.0.1:9000\n      secret:')),
      { WS_SECRET: 's3' },
      defaults,
      deployment,
    );
    expect(own.ok && own.bots[0]?.longConnection?.url).toBe('ws://127.0.0.1:9000');
  });

  it('is one mode or the other, and its URL a WebSocket one', () => {
    const both = ws.replace(
      '    dify:',
      `    callback: { token: t, encodingAesKey: ${key('b')} }\n    dify:`,
    );
    expect(problemsOf(withWs(both), { WS_SECRET: 's' })).toEqual([
      'WECOM_BOTS_FILE: bots[0] (ws): give the bot either callback: (a Token and EncodingAESKey) or longConnection: (a BotID and Secret), not both',
    ]);
    const neither = '  - id: none\n    dify:\n      apiKey: app-x\n';
    expect(problemsOf(withWs(neither))).toEqual([
      'WECOM_BOTS_FILE: bots[0] (none): give the bot either callback: (a Token and EncodingAESKey) or longConnection: (a BotID and Secret), one of them',
    ]);
    const http = ws.replace('      secret:', '      url: https://openws.example\n      secret:');
    expect(problemsOf(withWs(http), { WS_SECRET: 's' })).toEqual([
      'WECOM_BOTS_FILE: bots[0] (ws).longConnection.url: must be a wss:// (or ws://) URL',
    ]);
  });

  it('in the environment: WECOM_MODE=long-connection needs WECOM_BOT_ID and WECOM_BOT_SECRET, not the Token', () => {
    const missing = parseConfig({ WECOM_MODE: 'long-connection', DIFY_API_KEY: 'app-x' });
    expect(missing.ok ? [] : missing.problems).toEqual([
      "WECOM_BOT_ID: required when WECOM_MODE=long-connection: the bot's BotID from the WeCom admin console",
      "WECOM_BOT_SECRET: required when WECOM_MODE=long-connection: the bot's Secret from the WeCom admin console",
    ]);
    const result = parseConfig({
      WECOM_MODE: 'long-connection',
      WECOM_BOT_ID: 'aib-1',
      WECOM_BOT_SECRET: 'sec',
      DIFY_API_KEY: 'app-x',
      WECOM_WS_FRAME_INTERVAL_MS: '250',
    });
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.config.bots[0]).toMatchObject({
      id: 'default',
      mode: 'long-connection',
      aibotid: 'aib-1',
      longConnection: { botId: 'aib-1', secret: 'sec', url: 'wss://openws.work.weixin.qq.com' },
    });
    expect(result.config.wecom.ws).toEqual({ frameIntervalMs: 250, maxFrames: 80 });
  });
});
