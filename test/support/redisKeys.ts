// Cleaning up after a test that wrote under its own key prefix, on a single Redis or every master of
// a cluster (SCAN only sees the keys of the node it runs on).
import { Cluster, type Redis } from 'ioredis';

export async function deleteKeys(client: Redis | Cluster, prefix: string): Promise<number> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  let deleted = 0;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      // One DEL per key: on a cluster the keys of one batch live in different slots.
      for (const key of keys) deleted += await client.del(key);
    } while (cursor !== '0');
  }
  return deleted;
}

export const randomPrefix = (label: string): string =>
  `wdtest:${label}:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}:`;
