// The callback transport's delivery: WeCom polls the answer about once a second, so the reply a poll
// sends is kept with each append (the reply projection, machines/render.ts) and there is nothing to
// push; what the bubble could not show goes through the message's response_url, once
// (docs/protocol/wecom.md §8).
import { replyProjection } from '../machines/index.js';
import type { Delivery, ResponseUrlSender } from './ports.js';

export function pollDelivery(sender: ResponseUrlSender): Delivery {
  return {
    projection: (view, streamId, texts) => replyProjection(view, streamId, texts),
    async sendRest(view, markdown) {
      const url = view.context.responseUrl;
      if (!url) throw new Error('the message came without a response_url');
      await sender.deliver(url, markdown);
    },
  };
}
