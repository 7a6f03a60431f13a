// One answer pushed over the long connection: WeCom does not poll in this mode, so the node holding
// the bot's connection reads the stream as a poll would (from the store, whichever node owns the
// answer) and sends each new state of the bubble as an `aibot_respond_msg` frame with the message's
// req_id and the stream's id, one at a time (each waits for its ack), at most one per frame interval
// and at most `maxFrames` in all (the last always the finishing one). Where WeCom no longer takes the
// frames (the req_id belongs to a connection that is gone, or the stream expired), the answer is
// sent once it is finished as a message of its own, once.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';

/** What the pusher needs of its stream and of the connection. */
export interface PusherDeps {
  streamId: string;
  /** The stream's reply as a poll would get it (JSON text of `{msgtype:'stream', stream}`). */
  poll(): Promise<string>;
  /** One frame; resolves on WeCom's ack, rejects with its errcode (or a transport error). */
  respond(body: object): Promise<void>;
  /** An image the finished bubble shows: uploaded, then sent on the message's req_id. */
  sendImage(data: Buffer): Promise<void>;
  /** A file of the answer: uploaded, then sent on the message's req_id. */
  sendFile(data: Buffer, name: string): Promise<void>;
  /** The bubble could not be finished: send what it did not show as a message of its own, once. */
  sendRest(markdown: string): Promise<void>;
  /** What WeCom took of the bubble so far (its content), kept for a holder that carries on. */
  shown: { get(): Promise<string | undefined>; set(content: string): Promise<void> };
  /** Whether this node still holds the connection. */
  holding(): boolean;
  /** Resubscribe the connection (WeCom said it is not subscribed). */
  resubscribe(): void;
  logger: Logger;
}

export interface PusherSettings {
  frameIntervalMs: number;
  maxFrames: number;
}

/** WeCom's answers to a frame that say: this bubble takes no more. */
const GONE = new Set([846605, 846608]);
const NOT_SUBSCRIBED = 846609;
const CONFLICT = 6000;

/** A poll's reply as the pusher reads it: the bubble, and what follows it once finished. */
interface FinishingReply {
  stream?: { content?: string; finish?: boolean; msg_item?: Array<{ image?: { base64?: string } }> };
  template_card?: object;
  /** The answer's files (not WeCom's: the poll delivery keeps them for this pusher). */
  files?: Array<{ name?: string; base64?: string }>;
}

export type PushOutcome = 'finished' | 'sent-apart' | 'handed-over' | 'stopped';

export class Pusher {
  readonly #d: PusherDeps;
  readonly #s: PusherSettings;
  #frames = 0;
  #lastContent: string | undefined;
  #lastAt = 0;
  #wake: (() => void) | undefined;
  #stopped = false;
  /** The frames WeCom refused; the answer goes apart once finished. */
  #gone = false;

  constructor(deps: PusherDeps, settings: PusherSettings) {
    this.#d = deps;
    this.#s = settings;
  }

  /** The answer changed: look now rather than at the next tick (still no sooner than the interval). */
  nudge(): void {
    this.#wake?.();
  }

  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  async run(): Promise<PushOutcome> {
    const d = this.#d;
    const shown = await d.shown.get().catch(() => undefined);
    // A holder carrying on knows what WeCom took, not which req_id it was on: it tries the same one.
    if (shown !== undefined) this.#lastContent = shown;
    let backoff = 1000;
    while (!this.#stopped) {
      if (!d.holding()) return 'handed-over';
      let reply: FinishingReply;
      try {
        reply = JSON.parse(await d.poll()) as typeof reply;
      } catch (error) {
        d.logger.warn({ err: error }, 'could not read the answer to push; trying again');
        await this.#pause(backoff);
        continue;
      }
      const content = reply.stream?.content ?? '';
      const finish = reply.stream?.finish === true;
      if (this.#gone) {
        if (!finish) {
          await this.#pause(this.#s.frameIntervalMs);
          continue;
        }
        const rest = restOf(content, this.#lastContent);
        // The bubble showed it all already (only its finishing frame was refused): nothing to add.
        if (rest) await d.sendRest(rest);
        // What follows a bubble is no update of it: WeCom may still take it on the req_id.
        await this.#sendAfter(reply);
        return 'sent-apart';
      }
      const changed = content !== this.#lastContent || finish;
      // The last frame is kept for the end: past the budget only the finishing frame goes.
      const allowed = finish || this.#frames < this.#s.maxFrames - 1;
      if (changed && allowed) {
        const wait = this.#lastAt + this.#interval() - Date.now();
        if (wait > 0 && !finish) {
          await this.#pause(wait);
          continue;
        }
        const sent = await this.#send(content, finish);
        if (sent === 'retry') {
          await this.#pause(backoff);
          backoff = Math.min(backoff * 2, 30_000);
          continue;
        }
        backoff = 1000;
        if (sent === 'gone') continue;
        if (finish) {
          await this.#sendAfter(reply);
          return 'finished';
        }
      }
      await this.#pause(this.#interval());
    }
    return 'stopped';
  }

  /**
   * The least time before the next frame: the setting for the first half of the frames, then twice
   * as long for each following quarter, so that a long answer does not spend its frames early.
   */
  #interval(): number {
    const half = Math.max(1, Math.floor(this.#s.maxFrames / 2));
    if (this.#frames < half) return this.#s.frameIntervalMs;
    const left = Math.max(1, this.#s.maxFrames - this.#frames);
    const doublings = Math.min(8, Math.floor(Math.log2(half / left)) + 1);
    return this.#s.frameIntervalMs * 2 ** doublings;
  }

  async #send(content: string, finish: boolean): Promise<'sent' | 'gone' | 'retry'> {
    const d = this.#d;
    const first = this.#frames === 0 && this.#lastContent === undefined;
    // The first frame carries feedback.id, so that a rating comes back as feedback_event (as in callbacks).
    const body = {
      msgtype: 'stream',
      stream: { id: d.streamId, finish, content, ...(first ? { feedback: { id: d.streamId } } : {}) },
    };
    try {
      await d.respond(body);
    } catch (error) {
      const code = (error as { errcode?: number }).errcode;
      if (code !== undefined && GONE.has(code)) {
        d.logger.info(
          { errcode: code },
          'WeCom takes no more frames of this answer: it goes apart once finished',
        );
        this.#gone = true;
        return 'gone';
      }
      if (code === NOT_SUBSCRIBED) {
        d.logger.warn('WeCom says the connection is not subscribed: subscribing again');
        d.resubscribe();
      } else if (code === CONFLICT) d.logger.info('WeCom answered 6000 (conflict): the frame is sent again');
      else d.logger.warn({ err: error, errcode: code }, 'a frame was not taken; it is sent again');
      return 'retry';
    }
    this.#frames++;
    this.#lastAt = Date.now();
    this.#lastContent = content;
    // For a holder that carries on: not waited for, the next frame need not wait on it.
    d.shown.set(content).catch(() => undefined);
    return 'sent';
  }

  /**
   * What follows the finished bubble on this connection, whose stream frames carry neither images
   * (WeCom's `msg_item` is for callbacks) nor a card: its images, uploaded and sent in order, then the
   * answer's files, then its card (a form's buttons, suggested questions), each a reply of its own on
   * the same req_id. One WeCom does not take is logged and not sent again: the answer itself is whole.
   */
  async #sendAfter(reply: FinishingReply): Promise<void> {
    const d = this.#d;
    const sends: Array<{ what: Record<string, unknown>; send: () => Promise<void> }> = [];
    for (const [index, item] of (reply.stream?.msg_item ?? []).entries()) {
      const base64 = item.image?.base64;
      if (base64)
        sends.push({ what: { image: index + 1 }, send: () => d.sendImage(Buffer.from(base64, 'base64')) });
    }
    for (const file of reply.files ?? []) {
      const { base64, name = 'file' } = file;
      if (base64)
        sends.push({ what: { file: name }, send: () => d.sendFile(Buffer.from(base64, 'base64'), name) });
    }
    const card = reply.template_card;
    if (card)
      sends.push({
        what: { card: true },
        send: () => d.respond({ msgtype: 'template_card', template_card: card }),
      });
    for (const { what, send } of sends)
      await send().catch((error: unknown) =>
        d.logger.warn({ err: error, ...what }, 'what follows the bubble was not taken'),
      );
  }

  async #pause(ms: number): Promise<void> {
    if (this.#stopped) return;
    const woken = new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
    const controller = new AbortController();
    await Promise.race([woken, sleep(ms, undefined, { signal: controller.signal }).catch(() => undefined)]);
    controller.abort();
    this.#wake = undefined;
  }
}

/**
 * What the bubble did not show of the final content: the part after what it showed, nothing when it
 * showed all of it, all of it when it showed another text (the placeholder, a cut).
 */
export function restOf(content: string, shown: string | undefined): string {
  if (shown && content.startsWith(shown)) return content.slice(shown.length);
  return content;
}
