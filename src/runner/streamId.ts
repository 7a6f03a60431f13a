// A stream's id, derived from the message it answers: the bot, WeCom's msgid, and a secret of the
// bot's that every node has and no user does. The first copy of a message to reach the store opens
// its stream (an append at version 0); every other copy, on any node, finds that stream under the
// same id. Dedup is the opening itself: there is no claim that could be left pointing at a stream
// that never opened. Unguessable (it names a user's answer in every poll), 22 url-safe characters.
import { createHmac } from 'node:crypto';

export function streamIdFor(secret: string, bot: string, msgid: string): string {
  return createHmac('sha256', secret)
    .update(`stream\n${bot}\n${msgid}`)
    .digest()
    .subarray(0, 16)
    .toString('base64url');
}
