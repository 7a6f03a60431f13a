// A bench child: test/support/fakeDify.ts in a process of its own, so that the SSE frames of hundreds
// of slow answers are written by another event loop than the one timing the callbacks.
// Started by nodes.ts; not for use on its own.
import { type Scenario, startFakeDify } from '../../test/support/fakeDify.js';
import { announceReady, serveParent } from './childSide.mjs';

const dify = await startFakeDify({ checkConversations: false });
serveParent(
  {
    setDefault: (scenario) => dify.setDefault(scenario as Scenario),
    active: () => dify.activeTasks().length,
    runs: () => dify.runs().length,
  },
  () => dify.stop(),
);
announceReady({ port: Number(new URL(dify.url).port), url: dify.url });
