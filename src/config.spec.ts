// Settings, read once and validated: a problem is one line naming the setting, never its value.
import { describe, expect, it } from 'vitest';
import { parseClusterNodes, parseConfig, parseSettings } from './config.js';

const required = {
  WECOM_TOKEN: 'token',
  WECOM_ENCODING_AES_KEY: 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C',
  DIFY_API_KEY: 'app-key',
};

describe('settings', () => {
  it('take their defaults, and an empty value counts as unset', () => {
    const result = parseConfig({ ...required, PORT: '', REDIS_KEY_PREFIX: '' });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      store: { prefix: 'wd:', ttlSeconds: 1800 },
      stream: {
        windowMs: 360_000,
        marginMs: 30_000,
        leaseMs: 15_000,
        drainMs: 25_000,
        answerTimeoutMs: 1_200_000,
      },
      bots: [{ id: 'default', auth: { mode: 'none' }, dify: { appType: 'chat', bearer: 'app_key' } }],
      proxy: {},
    });
  });

  it('name every problem on its own line, never printing a value', () => {
    const result = parseConfig({
      WECOM_ENCODING_AES_KEY: 'short-and-secret',
      PORT: 'eighty',
      AUTH_MODE: 'ldap',
      HTTPS_PROXY: 'ftp://proxy',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const names = result.problems.map((p) => p.split(':')[0]);
    expect(names).toEqual(
      expect.arrayContaining([
        'WECOM_TOKEN',
        'WECOM_ENCODING_AES_KEY',
        'DIFY_API_KEY',
        'PORT',
        'AUTH_MODE',
        'HTTPS_PROXY',
      ]),
    );
    expect(result.problems.join('\n')).not.toContain('short-and-secret');
  });

  it('check what depends on another setting', () => {
    const result = parseConfig({ ...required, AUTH_MODE: 'directory', DIFY_BEARER: 'user_token' });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual(
      expect.arrayContaining([
        'MYSQL_URL: required when AUTH_MODE=directory',
        'AUTH_API_URL: required when AUTH_MODE=directory',
      ]),
    );
  });

  it('take one Redis: a server or a cluster, not both', () => {
    const result = parseConfig({
      ...required,
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_CLUSTER_NODES: '127.0.0.1:7000',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual(['REDIS_CLUSTER_NODES: set REDIS_URL or REDIS_CLUSTER_NODES, not both']);
  });

  it('a tool reading Redis gets the same check, with its other problems; one that does not, does not', () => {
    const env = {
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_CLUSTER_NODES: '127.0.0.1:7000',
      STREAM_TTL_SECONDS: 'soon',
    };
    const result = parseSettings(env, ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'STREAM_TTL_SECONDS']);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toHaveLength(2);
    expect(result.problems[0]).toMatch(/^STREAM_TTL_SECONDS: /);
    expect(result.problems[1]).toBe('REDIS_CLUSTER_NODES: set REDIS_URL or REDIS_CLUSTER_NODES, not both');
    expect(parseSettings(env, ['REDIS_URL']).ok).toBe(true);
  });
});

describe('REDIS_CLUSTER_NODES', () => {
  it('takes host:port lists', () => {
    expect(parseClusterNodes('10.0.0.1:6379,10.0.0.2:6380')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 6379 },
        { host: '10.0.0.2', port: 6380 },
      ],
      tls: false,
    });
  });

  it('takes redis:// and rediss:// URLs, the first one’s credentials and TLS for every node', () => {
    expect(parseClusterNodes('rediss://app:p%40ss@r1.internal:7000,rediss://r2.internal:7000')).toEqual({
      nodes: [
        { host: 'r1.internal', port: 7000 },
        { host: 'r2.internal', port: 7000 },
      ],
      username: 'app',
      password: 'p@ss',
      tls: true,
    });
    expect(parseClusterNodes('redis://:secret@127.0.0.1:7001')).toMatchObject({
      password: 'secret',
      tls: false,
    });
  });

  it('refuses what is not a list of nodes, without echoing it', () => {
    for (const bad of ['', 'host', 'host:', 'host:port', ':6379', 'a:1,,b:2', 'redis://h:1/db']) {
      expect(parseClusterNodes(bad), bad).toBeUndefined();
    }
    const result = parseConfig({ ...required, REDIS_CLUSTER_NODES: 'redis://:topsecret@h' });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.join('\n')).not.toContain('topsecret');
  });
});

describe('problems that span settings', () => {
  it('are reported together with those of single settings', () => {
    const result = parseConfig({
      ...required,
      PORT: 'x',
      AUTH_MODE: 'directory',
      WINDOW_MARGIN_SECONDS: '400',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.split(':')[0])).toEqual(
      expect.arrayContaining(['PORT', 'MYSQL_URL', 'AUTH_API_URL', 'WINDOW_MARGIN_SECONDS']),
    );
  });
});
