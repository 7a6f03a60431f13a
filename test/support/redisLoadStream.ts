// Run as its own process by test/store.crossprocess.spec.ts: loads one stream with a fresh client and
// prints what it got, so the test can check that another node rebuilds exactly the same stream.
// Usage: node --import tsx test/support/redisLoadStream.ts <redis url> <prefix> <stream id>
import { persist } from '../../src/machines/index.js';
import { connectRedis, createRedisStore } from '../../src/store/index.js';

const [url, prefix, streamId] = process.argv.slice(2);
if (!url || !prefix || !streamId) {
  process.stderr.write('usage: redisLoadStream.ts <redis url> <prefix> <stream id>\n');
  process.exit(2);
}
const store = createRedisStore(connectRedis({ url }), { prefix, ttlSeconds: 600 });
try {
  const loaded = await store.load(streamId);
  const out = loaded
    ? { version: loaded.version, tail: loaded.tail, stream: persist(loaded.snapshot) }
    : null;
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await store.close();
}
