// Prometheus metrics (prom-client), one registry per service instance so that several instances
// can live in one test process. Labels stay low-cardinality: never a user id or a stream id. What is
// about one bot carries its id as `bot` (empty for a callback no bot was found for).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  callbacks: Counter<'bot' | 'msgtype' | 'outcome'>;
  /**
   * Count one callback: the counter's child for these labels is made once, since hashing the label
   * set on every poll costs more than the count itself.
   */
  countCallback(bot: string, msgtype: string, outcome: string): void;
  pollDuration: Histogram<'bot'>;
  /** One poll answered, in seconds (the histogram's child per bot made once, as for callbacks). */
  observePoll(bot: string, seconds: number): void;
  /**
   * now − timestamp, in seconds, of the latest signed callback accepted: a plain number per callback,
   * the gauge reads it when scraped.
   */
  recordCallbackSkew(seconds: number): void;
  callbackClockSkew: Gauge;
  streamsOpened: Counter<'bot'>;
  streamsFinished: Counter<'bot' | 'state'>;
  firstToken: Histogram<'bot'>;
  completion: Histogram<'bot'>;
  difyErrors: Counter<'bot' | 'code'>;
  dedupHits: Counter<'bot'>;
  takeovers: Counter<'bot'>;
  deliveries: Counter<'bot' | 'outcome'>;
  tokenService: Counter<'outcome'>;
  storeErrors: Counter<'op'>;
  /** New messages refused by a rate limit, by the limit's scope (user, conversation). */
  rateLimited: Counter<'bot' | 'scope'>;
  inflight: Gauge<'bot'>;
  /** 1 while this node holds the bot's long connection, subscribed; 0 otherwise. */
  connectionUp: Gauge<'bot'>;
  /** Frames of answers pushed over a long connection, by outcome. */
  frames: Counter<'bot' | 'outcome'>;
  draining: Gauge;
}

const msgtypes = new Set(['text', 'image', 'mixed', 'voice', 'file', 'stream', 'event']);

/** A message type as the `msgtype` label: WeCom's own, `unparsed` when none was read, else `other` (bounded). */
export const msgtypeLabel = (t: string | undefined): string =>
  t === undefined || t === 'unparsed' ? 'unparsed' : msgtypes.has(t) ? t : 'other';

/**
 * A metric's child for a label set, made once: hashing the labels on every poll costs more than the
 * count itself.
 */
function children<C>(): (key: string, make: () => C) => C {
  const made = new Map<string, C>();
  return (key, make) => {
    let child = made.get(key);
    if (!child) {
      child = make();
      made.set(key, child);
    }
    return child;
  };
}

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const answerBuckets = [0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600];

export function createMetrics(options: { defaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  // The conventional process_* and nodejs_* names (CPU, memory, event-loop lag, GC), unprefixed.
  if (options.defaults ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const callbacks = new Counter({
    name: 'wecom_dify_callbacks_total',
    help: 'WeCom callbacks by message type and outcome',
    labelNames: ['bot', 'msgtype', 'outcome'] as const,
    registers,
  });
  const callbackChild = children<{ inc(): void }>();
  const pollDuration = new Histogram({
    name: 'wecom_dify_poll_duration_seconds',
    help: 'Time to answer a stream refresh poll',
    labelNames: ['bot'] as const,
    buckets: latencyBuckets,
    registers,
  });
  const pollChild = children<{ observe(seconds: number): void }>();
  let callbackSkew = 0;
  return {
    registry,
    callbacks,
    countCallback(bot, msgtype, outcome) {
      callbackChild(`${bot} ${msgtype} ${outcome}`, () => callbacks.labels({ bot, msgtype, outcome })).inc();
    },
    pollDuration,
    observePoll(bot, seconds) {
      pollChild(bot, () => pollDuration.labels({ bot })).observe(seconds);
    },
    recordCallbackSkew(seconds) {
      callbackSkew = seconds;
    },
    callbackClockSkew: new Gauge({
      name: 'wecom_dify_callback_clock_skew_seconds',
      help: "How far the latest accepted callback's signed timestamp was behind this node's clock (negative: ahead)",
      registers,
      collect() {
        this.set(callbackSkew);
      },
    }),
    streamsOpened: new Counter({
      name: 'wecom_dify_streams_opened_total',
      help: 'Streams opened',
      labelNames: ['bot'],
      registers,
    }),
    streamsFinished: new Counter({
      name: 'wecom_dify_streams_finished_total',
      help: 'Streams finished, by final state',
      labelNames: ['bot', 'state'],
      registers,
    }),
    firstToken: new Histogram({
      name: 'wecom_dify_first_token_seconds',
      help: 'From the user message to its first answer text recorded, visible to the next poll',
      labelNames: ['bot'],
      buckets: answerBuckets,
      registers,
    }),
    completion: new Histogram({
      name: 'wecom_dify_completion_seconds',
      help: 'From the user message to the answer settled',
      labelNames: ['bot'],
      buckets: answerBuckets,
      registers,
    }),
    difyErrors: new Counter({
      name: 'wecom_dify_dify_errors_total',
      help: 'Dify failures by code',
      labelNames: ['bot', 'code'],
      registers,
    }),
    dedupHits: new Counter({
      name: 'wecom_dify_dedup_hits_total',
      help: 'Retried WeCom callbacks answered from an existing stream',
      labelNames: ['bot'],
      registers,
    }),
    takeovers: new Counter({
      name: 'wecom_dify_takeovers_total',
      help: 'Streams taken over after their owner stopped renewing its lease',
      labelNames: ['bot'],
      registers,
    }),
    deliveries: new Counter({
      name: 'wecom_dify_deliveries_total',
      help: 'Answers delivered through response_url, by outcome',
      labelNames: ['bot', 'outcome'],
      registers,
    }),
    tokenService: new Counter({
      name: 'wecom_dify_token_service_requests_total',
      help: 'Requests to the token service, by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    storeErrors: new Counter({
      name: 'wecom_dify_store_errors_total',
      help: 'Event store failures by operation',
      labelNames: ['op'],
      registers,
    }),
    rateLimited: rateLimitedCounter(registers),
    inflight: new Gauge({
      name: 'wecom_dify_inflight_answers',
      help: 'Answers this node is running',
      labelNames: ['bot'],
      registers,
    }),
    connectionUp: new Gauge({
      name: 'wecom_dify_connection_up',
      help: "1 while this node holds the bot's long connection to WeCom, subscribed",
      labelNames: ['bot'],
      registers,
    }),
    frames: new Counter({
      name: 'wecom_dify_frames_total',
      help: 'Frames of answers pushed over a long connection, by outcome',
      labelNames: ['bot', 'outcome'],
      registers,
    }),
    draining: new Gauge({
      name: 'wecom_dify_draining',
      help: '1 while this node drains for shutdown',
      registers,
    }),
  };
}

/** New messages refused by a rate limit, by bot and scope. */
function rateLimitedCounter(registers: Registry[]): Counter<'bot' | 'scope'> {
  return new Counter({
    name: 'wecom_dify_rate_limited_total',
    help: 'New messages refused by a rate limit, by scope',
    labelNames: ['bot', 'scope'] as const,
    registers,
  });
}

/**
 * A bot's series exist from when it is served, at 0, so that a rate over them is defined before its
 * first refusal or failure.
 */
export function announceBot(metrics: Metrics, bot: string): void {
  for (const scope of ['user', 'conversation']) metrics.rateLimited.labels({ bot, scope }).inc(0);
  metrics.streamsOpened.labels({ bot }).inc(0);
  metrics.takeovers.labels({ bot }).inc(0);
  metrics.dedupHits.labels({ bot }).inc(0);
  metrics.inflight.labels({ bot }).inc(0);
}
