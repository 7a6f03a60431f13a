// The rate limits of one new WeCom message, from the settings, and what the user reads when one is
// full. Counted per message accepted (not per poll, nor per WeCom retry of the same message).
import type { Config } from '../config.js';
import type { Limit, LimitScope } from './rateLimit.js';

const minute = 60_000;

/** Who sent a message, as WeCom's callback names them. */
export interface Sender {
  bot: string;
  userid: string;
  chattype: 'single' | 'group';
  chatid?: string;
}

/**
 * The user's limit counts every message of that user to this bot, wherever sent; the conversation's
 * counts the whole chat: a group (every member together), or a single chat (where it is the user's
 * again, so the lower of the two applies). A limit set to 0 is off and left out.
 */
export function messageLimits(settings: Config['limits'], sender: Sender): Limit[] {
  const chat =
    sender.chattype === 'group' && sender.chatid ? `group:${sender.chatid}` : `single:${sender.userid}`;
  const limits: Limit[] = [];
  if (settings.userPerMinute > 0)
    limits.push({
      scope: 'user',
      id: `${sender.bot}:${sender.userid}`,
      limit: settings.userPerMinute,
      windowMs: minute,
    });
  if (settings.conversationPerMinute > 0)
    limits.push({
      scope: 'conversation',
      id: `${sender.bot}:${chat}`,
      limit: settings.conversationPerMinute,
      windowMs: minute,
    });
  return limits;
}

/** The reply to a message refused by a limit, by the limit's scope. */
export const rateLimitedTexts: Record<LimitScope, string> = {
  user: '你发消息太快了，请稍等一会儿再问。',
  conversation: '这个对话里的提问太多了，请稍等一会儿再问。',
};
