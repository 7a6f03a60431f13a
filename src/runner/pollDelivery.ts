// The callback transport's delivery: WeCom polls the answer about once a second, so the reply a poll
// sends is kept with each append (the reply projection, machines/render.ts) and there is nothing to
// push; what the bubble could not show goes through the message's response_url, once
// (docs/protocol/wecom.md §8). The images a finished bubble shows travel in its finishing reply
// (`msg_item`: base64 and MD5): the owner hands their bytes over before it records the end, and the
// reply it then keeps carries them, for whichever node the last poll reaches.
import { createHash } from 'node:crypto';
import { isFinished, render, replyProjection, stateOf } from '../machines/index.js';
import type { Delivery, ResponseUrlSender } from './ports.js';

export function pollDelivery(sender: ResponseUrlSender): Delivery {
  /** The images of the answers this node owns, by stream and MD5, until their owner lets go. */
  const shelf = new Map<string, Map<string, Buffer>>();
  return {
    projection(view, streamId, texts) {
      const images = shelf.get(streamId);
      const shown = view.context.attached?.filter((f) => f.shown && f.md5 && images?.has(f.md5));
      if (
        !images ||
        !shown?.length ||
        !isFinished(view) ||
        stateOf(view) !== 'completed' ||
        view.context.bubble
      )
        return replyProjection(view, streamId, texts);
      const reply = render(view, streamId, texts);
      const msg_item = shown.map((f) => ({
        msgtype: 'image',
        image: { base64: images.get(f.md5!)!.toString('base64'), md5: f.md5 },
      }));
      return { fixed: JSON.stringify({ ...reply, stream: { ...reply.stream, msg_item } }) };
    },
    async sendRest(view, markdown) {
      const url = view.context.responseUrl;
      if (!url) throw new Error('the message came without a response_url');
      await sender.deliver(url, markdown);
    },
    attachImages(streamId, images) {
      const byMd5 = new Map<string, Buffer>();
      for (const data of images) byMd5.set(md5(data), data);
      shelf.set(streamId, byMd5);
    },
    forget(streamId) {
      shelf.delete(streamId);
    },
  };
}

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');
