// A network where traffic only leaves through a proxy: with HTTP_PROXY set, the service reaches Dify
// through it (a CONNECT tunnel, as corporate proxies expect); with the host in NO_PROXY, directly.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type E2E, startE2E } from './support/e2e.js';

describe('outbound calls through a proxy', () => {
  let proxy: Server;
  let proxyUrl: string;
  const tunnels: string[] = [];

  beforeAll(async () => {
    proxy = createServer((_req, res) => {
      res.statusCode = 405;
      res.end();
    });
    proxy.on('connect', (req, client, head) => {
      tunnels.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client).pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
  });

  async function askThrough(env: Record<string, string>): Promise<{ content: string; e: E2E }> {
    const e = await startE2E({ name: 'proxy', env });
    try {
      e.dify.setDefault({ kind: 'answer', text: '穿过代理的回答' });
      const sent = await e.clients[0]!.text('你好');
      const { reply } = await e.clients[0]!.pollUntilFinished(sent.reply.stream.id, { intervalMs: 50 });
      return { content: reply.stream.content, e };
    } finally {
      await e.stop();
    }
  }

  it('HTTP_PROXY: Dify is reached through the proxy', async () => {
    tunnels.length = 0;
    const { content, e } = await askThrough({ HTTP_PROXY: proxyUrl });
    expect(content).toBe('穿过代理的回答');
    expect(tunnels).toContain(new URL(e.dify.url).host);
  });

  it('NO_PROXY: a host named there is reached directly', async () => {
    tunnels.length = 0;
    const { content } = await askThrough({ HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' });
    expect(content).toBe('穿过代理的回答');
    expect(tunnels).toEqual([]);
  });
});
