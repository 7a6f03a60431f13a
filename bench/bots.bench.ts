// Many bots on the poll path: one service process serving ONE bot, and one serving TWENTY (a bots
// file), polled for the same streaming answer. The twenty-bot node is polled on the bot's own path
// (`/wecom/callback/{id}`: a lookup by id) and on the shared URL (`/wecom/callback`: the bot is found by
// whose Token signed the poll). The polled bot is the file's last, so that the search on the shared
// URL goes past all nineteen others. Targets: the own path costs no more than one bot (within 3%,
// noise), the shared URL within 10% of the own path; by server CPU per poll, which a shared machine
// moves less than the rate. The three are measured in alternating rounds after a warm-up.
// Runs inside `npm run bench`, or alone: node --import tsx bench/bots.bench.ts

import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Pool } from 'undici';
import { connectRedis, createRedisStore } from '../src/store/index.js';
import { WecomClient } from '../test/support/wecomClient.js';
import { add, emptyTotals, line, measure, rate, seedStream, type Totals } from './poll.bench.js';
import type { BenchChild } from './support/children.js';
import { stopAll } from './support/children.js';
import { benchPrefix, dropPrefix, redisUrl, startServiceNode, testBot } from './support/nodes.js';
import { verdict } from './support/stats.js';
import { drive, openPool, openReply, pollMessage, post, prepare } from './support/wecomLoad.js';

const BOTS = 20;
const CONCURRENCY = 48;
const WARMUP_MS = 2_000;
const ROUND_MS = 3_000;
const ROUNDS = 3;
/** How much more CPU a poll on a bot's own path may take than with one bot: measurement noise. */
const OWN_PATH_SLACK = 1.03;
const SHARED_URL_TARGET = 1.1;

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const randomKey = (): string => Array.from({ length: 43 }, () => ALNUM[randomInt(ALNUM.length)]).join('');

/** Twenty bots, the one polled alone (the sample bot's Token and key) last. */
function twentyBots(): Array<{ id: string; token: string; encodingAESKey: string }> {
  return Array.from({ length: BOTS }, (_, i) => {
    const last = i === BOTS - 1;
    return {
      id: `bot-${i + 1}`,
      token: last ? testBot.token : `token${i}${randomBytes(3).toString('hex')}`,
      encodingAESKey: last ? testBot.encodingAESKey : randomKey(),
    };
  });
}

export async function benchBots(): Promise<string> {
  const prefix = benchPrefix('bots');
  const dir = mkdtempSync(join(tmpdir(), 'wd-bench-bots-'));
  const file = join(dir, 'bots.json');
  const bots = twentyBots();
  writeFileSync(
    file,
    JSON.stringify({
      bots: bots.map((b, i) => ({
        id: b.id,
        callback: { token: b.token, encodingAesKey: b.encodingAESKey },
        dify: { apiKey: `app-${i}` },
      })),
    }),
  );
  const redis = connectRedis({ url: redisUrl });
  const store = createRedisStore(redis, { prefix, ttlSeconds: 600 });
  let one: BenchChild | undefined;
  let many: BenchChild | undefined;
  const pools: Pool[] = [];
  try {
    const streamId = randomBytes(16).toString('base64url');
    await seedStream(store, streamId);

    [one, many] = await Promise.all([
      startServiceNode({ prefix, name: 'bots-one' }),
      startServiceNode({ prefix, name: 'bots-twenty', env: { WECOM_BOTS_FILE: file } }),
    ]);
    const as = (path?: string) =>
      new WecomClient({
        baseUrl: 'http://127.0.0.1',
        token: testBot.token,
        encodingAESKey: testBot.encodingAESKey,
        botId: testBot.botId,
        ...(path ? { path } : {}),
      });
    const shared = as();
    const own = as(`/wecom/callback/bot-${BOTS}`);
    // Every bot's polls in turn on the shared URL: the search's worst case, no bot twice in a row.
    // The sample bot first: the probe's reply is checked with its Token.
    const everyBot = [bots.at(-1)!, ...bots.slice(0, -1)].map(
      (b) =>
        new WecomClient({ baseUrl: 'http://127.0.0.1', token: b.token, encodingAESKey: b.encodingAESKey }),
    );
    const cases: Array<{
      name: string;
      server: BenchChild;
      clients: WecomClient[];
      pool?: Pool;
      totals: Totals;
    }> = [
      { name: '1 bot', server: one, clients: [shared], totals: emptyTotals() },
      { name: `${BOTS} bots, own path`, server: many, clients: [own], totals: emptyTotals() },
      { name: `${BOTS} bots, shared URL`, server: many, clients: [shared], totals: emptyTotals() },
      {
        name: `${BOTS} bots, shared URL, all in turn`,
        server: many,
        clients: everyBot,
        totals: emptyTotals(),
      },
    ];
    for (const c of cases) {
      c.pool = openPool(c.server.url, CONCURRENCY);
      pools.push(c.pool);
      const probe = prepare(c.clients[0]!, pollMessage(streamId));
      const { status, body } = await post(c.pool, probe);
      if (status !== 200) throw new Error(`${c.name} answered a poll with ${status}: ${body.slice(0, 200)}`);
      if (openReply(body, probe.nonce).stream?.id !== streamId)
        throw new Error(`${c.name}: not the stream's reply`);
    }
    const requestsOf = new Map(
      cases.map((c) => [
        c,
        Array.from({ length: 3_000 }, (_, i) =>
          prepare(c.clients[i % c.clients.length]!, pollMessage(streamId)),
        ),
      ]),
    );
    for (const c of cases)
      await drive(c.pool!, requestsOf.get(c)!, { concurrency: CONCURRENCY, durationMs: WARMUP_MS });
    for (let round = 0; round < ROUNDS; round++)
      for (const c of cases) add(c.totals, await measure(c.server, c.pool!, requestsOf.get(c)!, ROUND_MS));

    const cpu = (t: Totals) => t.cpuMicros / t.ok;
    const [single, ownPath, sharedUrl, inTurn] = cases.map((c) => c.totals) as [
      Totals,
      Totals,
      Totals,
      Totals,
    ];
    const inTurnRatio = cpu(inTurn) / cpu(ownPath);
    const ownRatio = cpu(ownPath) / cpu(single);
    const sharedRatio = cpu(sharedUrl) / cpu(ownPath);
    const failed = cases.some((c) => c.totals.failed > 0);
    return [
      `many bots on the poll path: one node serving 1 bot vs one serving ${BOTS} (the polled bot last in the file), ` +
        `a streaming answer, ${CONCURRENCY} polls in flight, ${ROUNDS} × ${ROUND_MS / 1000} s each after ${WARMUP_MS / 1000} s warm-up`,
      ...cases.map((c) => line(c.name, c.totals)),
      `  own path / 1 bot = ${ownRatio.toFixed(3)} server CPU per poll (rate ${(rate(ownPath) / rate(single)).toFixed(2)}); ` +
        `target ≤ ${OWN_PATH_SLACK}: ${verdict(ownRatio <= OWN_PATH_SLACK && !failed)}`,
      `  shared URL / own path = ${sharedRatio.toFixed(3)} server CPU per poll (rate ${(rate(sharedUrl) / rate(ownPath)).toFixed(2)}); ` +
        `target ≤ ${SHARED_URL_TARGET}: ${verdict(sharedRatio <= SHARED_URL_TARGET && !failed)}`,
      `  shared URL, all ${BOTS} bots in turn / own path = ${inTurnRatio.toFixed(3)} server CPU per poll ` +
        `(rate ${(rate(inTurn) / rate(ownPath)).toFixed(2)}): the search's worst case, no target`,
    ].join('\n');
  } finally {
    await Promise.allSettled(pools.map((p) => p.close()));
    await stopAll([one, many]);
    await store.close();
    await dropPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${await benchBots()}\n`);
}
