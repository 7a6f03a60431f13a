// The bots a runner under test serves: one answer source and authenticator for whichever bot id a
// stream names (a seeded stream's context names its own), made once per id.
import type { Authenticator } from '../../src/auth/types.js';
import { defaultTexts } from '../../src/machines/index.js';
import type { AnswerSource, Bot, Bots, MediaSource } from '../../src/runner/ports.js';

export function anyBot(parts: { answers: AnswerSource; auth: Authenticator; media?: MediaSource }): Bots {
  const made = new Map<string, Bot>();
  return {
    bot(id) {
      let bot = made.get(id);
      if (!bot) {
        bot = {
          id,
          ...parts,
          texts: defaultTexts,
          identity: { inputs: {}, bearer: 'app_key' },
          secret: 'a-secret-of-the-test-bots',
        };
        made.set(id, bot);
      }
      return bot;
    },
  };
}
