// The usage text of every command, in one place so that `help` and a usage error say the same.

export const commandUsage = {
  serve: 'wecom-dify serve                 run the service (settings from the environment and .env)',
  bots: [
    'wecom-dify bots [--json]          the bots this deployment serves (WECOM_BOTS_FILE, or the one of the',
    '                                 environment): one line each, id first; exit 2 with the problems',
  ].join('\n'),
  migrate: 'wecom-dify migrate               create or update the directory tables in MYSQL_URL',
  doctor: [
    'wecom-dify doctor                check the settings and reach each service they name (Redis, MySQL,',
    '                                 the token service, Dify): one line each, ok or the problem',
  ].join('\n'),
  users: [
    'wecom-dify users add <userid> [--account <code>] [--name N] [--department D] [--secret S | --secret -] [--disabled]',
    'wecom-dify users list [--json] | users disable <userid> | users enable <userid>',
    '  the directory (MYSQL_URL); --account, the token service\u2019s code for the user, is required when',
    '  AUTH_MODE=directory.',
  ].join('\n'),
  streams: [
    'wecom-dify streams [--unfinished] [--stuck <duration>] [--user <userid>] [--bot <id>] [--limit N] [--json] [--prefix P]',
    '  recent streams, newest first. --stuck 2m: unfinished and quiet for 2 minutes, or whose owner\u2019s',
    '  lease ran out. Needs REDIS_URL or REDIS_CLUSTER_NODES; --prefix P reads the keys under P rather',
    '  than REDIS_KEY_PREFIX (as replay and export do).',
  ].join('\n'),
  replay: [
    'wecom-dify replay <streamId> [--json] [--stuck <duration>] [--bot <id>] [--prefix P | --url <service>]',
    'wecom-dify replay --file <export.json> [--json] [--bot <id>]',
    '  every event with its time, the state after it and how the answer grew; why an unfinished stream',
    '  is stuck. --url reads the stream from a running service\u2019s inspector (INSPECTOR=1, with',
    '  INSPECTOR_TOKEN when it has one): a service without Redis, or the demo. --file replays an export',
    '  offline, with no Redis and no settings.',
  ].join('\n'),
  export: [
    'wecom-dify export <streamId> [--out <file> | --out -] [--bot <id>] [--prefix P]',
    '  writes the stream\u2019s events, its lease and the time as JSON (default <streamId>.json).',
  ].join('\n'),
  chat: [
    'wecom-dify chat [--url <base>] [--bot <id>] [--token T] [--key K] [--user <userid>] [--chat <chatid>]',
    '                [--aibotid A] [--interval 1s] [--timeout 6m] [--say "question"]...',
    'wecom-dify chat --ws [--port 8765] [--bot <id>] [--user <userid>] [--chat <chatid>] [--aibotid A]',
    '                [--timeout 6m] [--say "question"]...',
    '  a WeCom simulator: type a line, watch the answer grow. Token and key default to WECOM_TOKEN and',
    '  WECOM_ENCODING_AES_KEY (environment or .env); --bot <id> talks to that bot of WECOM_BOTS_FILE, on',
    '  its own path; --url to http://127.0.0.1:$PORT. With --say it asks those questions, prints the',
    '  answers and exits. --ws plays WeCom\u2019s long-connection server on 127.0.0.1, --port 8765 unless',
    '  said, for a service with WECOM_MODE=long-connection: it prints the settings that point one at it',
    '  (the BotID and Secret of WECOM_BOT_ID and WECOM_BOT_SECRET, of --bot <id> of WECOM_BOTS_FILE, or',
    '  made up), waits for it to subscribe, and chats over that connection.',
  ].join('\n'),
  demo: [
    'wecom-dify demo [--port 8080] [--user <userid>] [--bot <id>] [--long-connection] [--say "question"]...',
    '  the whole loop here, no settings: the service on the in-memory store, a Dify stand-in, the',
    '  simulator, and the inspector. Ctrl-C or Ctrl-D ends it. --bot <id>: the demo\u2019s bot has that id,',
    '  as a bots file would give it, and the simulator talks to it on its own path. --long-connection:',
    '  the service runs with WECOM_MODE=long-connection and dials WeCom\u2019s long-connection simulator in',
    '  the same process (a BotID and Secret made up per run), rather than taking callbacks.',
  ].join('\n'),
} as const;

export type CommandName = keyof typeof commandUsage;

export const usage = [
  'usage: wecom-dify <command> [options]',
  '',
  ...Object.values(commandUsage).map((text) =>
    text
      .split('\n')
      .map((line) => `  ${line}`)
      .join('\n'),
  ),
  '  wecom-dify help                  this text',
  '',
].join('\n');
