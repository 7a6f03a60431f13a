// The callback transport's delivery: WeCom polls the answer about once a second, so the reply a poll
// sends is kept with each append (the reply projection, machines/render.ts) and there is nothing to
// push; what the bubble could not show goes through the message's response_url, once
// (docs/protocol/wecom.md §8). The images a finished bubble shows travel in its finishing reply
// (`msg_item`: base64 and MD5): the owner hands their bytes over before it records the end, and the
// reply it then keeps carries them, for whichever node the last poll reaches.
import { render, replyProjection, stateOf } from '../machines/index.js';
import type { Delivery, ResponseUrlSender } from './ports.js';

export function pollDelivery(sender: ResponseUrlSender): Delivery {
  /** The images and files of the answers this node owns, by stream and MD5, until their owner lets go. */
  const shelf = new Map<string, Map<string, Buffer>>();
  return {
    projection(view, streamId, texts) {
      const kept = shelf.get(streamId);
      const shown = view.context.attached?.filter((f) => f.shown && f.md5 && kept?.has(f.md5));
      // The finishing reply of an answer, or of one that waits for a person (its card goes with them).
      const state = stateOf(view);
      if (!kept || !shown?.length || (state !== 'completed' && state !== 'waiting') || view.context.bubble)
        return replyProjection(view, streamId, texts);
      const reply = render(view, streamId, texts);
      const base64 = (md5: string) => kept.get(md5)!.toString('base64');
      const images = shown.filter((f) => f.type === 'image');
      const files = shown.filter((f) => f.type === 'file');
      const msg_item = images.map((f) => ({
        msgtype: 'image',
        image: { base64: base64(f.md5!), md5: f.md5 },
      }));
      return {
        fixed: JSON.stringify({
          ...reply,
          stream: { ...reply.stream, ...(msg_item.length ? { msg_item } : {}) },
          // Not WeCom's: read by the long connection's pusher, which sends each as a file after the
          // bubble (a poll of such a stream comes from no WeCom).
          ...(files.length
            ? { files: files.map((f) => ({ name: f.name ?? 'file', base64: base64(f.md5!), md5: f.md5 })) }
            : {}),
        }),
      };
    },
    async sendRest(view, markdown) {
      const url = view.context.responseUrl;
      if (!url) throw new Error('the message came without a response_url');
      await sender.deliver(url, markdown);
    },
    attach(streamId, items) {
      const byMd5 = shelf.get(streamId) ?? new Map<string, Buffer>();
      for (const { md5, data } of items) byMd5.set(md5, data);
      shelf.set(streamId, byMd5);
    },
    forget(streamId) {
      shelf.delete(streamId);
    },
  };
}
