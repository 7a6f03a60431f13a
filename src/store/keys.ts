// The Redis key names of the store (docs/design-notes.md, "Redis keys"). Every key of one stream carries the hash
// tag `{streamId}`, so a Lua script touching them runs on one Redis Cluster slot; the message, the
// conversation and the index keys live in other slots and are only ever touched one at a time.

export const defaultPrefix = 'wd:';

export interface StreamKeys {
  /**
   * What the stream's keys start with, `<prefix>stream:{<id>}`: the events, snapshot hash, text and
   * lease are it with `:events`, `:snap`, `:text` and `:lease` (a script carrying hundreds of streams
   * is given this one name per stream, not four).
   */
  base: string;
  /** Redis Stream of the events, one entry per event (`t` = type, `e` = JSON). */
  events: string;
  /**
   * Hash: `v` version; `s` snapshot JSON (its answer left out), `sv` its version, `sid` the last entry
   * folded into it, `sl` its answer's length in the text (bytes), `st` the state now; the poll reply
   * projection: `rm` `f` (fixed, in `r`) or `t` (from the text).
   */
  snap: string;
  /** String: the answer's text as the events built it, appended to delta by delta. */
  text: string;
  /** String: JSON `{node, token, until}`, with its own PX TTL. */
  lease: string;
  /** String `1` while the user asked the owner to stop (/stop). */
  stop: string;
}

/**
 * The keys of one stream. A brace in the id would move the hash tag and split the stream over slots
 * (a CROSSSLOT error on a cluster), so such an id is refused here: it is a programming error.
 */
/** Whether an id can name a stream's keys (not empty, no brace to move the hash tag). */
export const isStreamId = (id: string): boolean => id.length > 0 && id.length <= 200 && !/[{}]/.test(id);

export function streamKeys(prefix: string, streamId: string): StreamKeys {
  if (!isStreamId(streamId)) {
    throw new RangeError(`stream id must be non-empty and free of braces: ${JSON.stringify(streamId)}`);
  }
  const base = `${prefix}stream:{${streamId}}`;
  return {
    base,
    events: `${base}:events`,
    snap: `${base}:snap`,
    text: `${base}:text`,
    lease: `${base}:lease`,
    stop: `${base}:stop`,
  };
}

/** The Dify conversation id of a user (single chat) or of a user in a group chat. */
export const conversationKey = (prefix: string, bot: string, scope: string): string =>
  `${prefix}conv:${bot}:${scope}`;

/** List of the stream ids of one conversation in arrival order; the head is being answered. */
export const queueKey = (prefix: string, bot: string, scope: string): string =>
  `${prefix}queue:${bot}:${scope}`;

/** The pub/sub channel of stop requests: a message is the stream id. */
export const stopChannel = (prefix: string): string => `${prefix}stop`;

/**
 * ZSET of recent stream ids scored by the store's clock at their last append, for the inspector. The
 * two index keys share the hash tag `{index}`, so that one pipeline updates both on a Redis Cluster.
 */
export const indexKey = (prefix: string): string => `${prefix}{index}:streams`;

/**
 * ZSET of the streams not yet finished, scored like the index: what a node sweeping for streams whose
 * owner died reads, without loading every recent stream.
 */
export const runningKey = (prefix: string): string => `${prefix}{index}:running`;
