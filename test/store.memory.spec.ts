// The in-memory store against the store contract, with its clock under the test's control.
import { createMemoryStore } from '../src/store/index.js';
import { storeContract } from './store.contract.js';

storeContract('memory', async () => {
  let now = Date.now();
  const ttlSeconds = 600;
  const store = createMemoryStore({ ttlSeconds, now: () => now });
  return {
    store,
    ttlSeconds,
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
});
