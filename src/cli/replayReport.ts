// The replay of a stream for `wecom-dify replay`: every event folded through the machine, one step at a
// time, and a diagnosis of where and why an unfinished stream stands still (decided by
// src/diagnosis/stuck.ts, said here in sentences). Pure: the events, the owner's lease and the clock
// come in; IO (the store, a file) is the caller's.

import {
  defaultStuckSettings,
  diagnoseStuck,
  type LeaseStatus,
  type StreamFacts,
  type Waiting,
} from '../diagnosis/stuck.js';
import {
  evolve,
  initialStream,
  isFinished,
  isKnown,
  type ReadEvent,
  type StreamSnapshot,
  type StreamStateValue,
  stateOf,
  summarizeEvent,
} from '../machines/index.js';
import type { Lease } from '../store/port.js';
import { formatDuration, formatOffset } from './duration.js';
import { formatTable, oneLine } from './table.js';

/** An event as read, with its 1-based position in the stream. */
export interface ReplayInput {
  seq: number;
  event: ReadEvent;
}

export interface ReplayStep {
  seq: number;
  type: string;
  /** The event's own time (epoch ms), when it has one. */
  at: number | null;
  /** Milliseconds since the stream's first timed event; null for an event with no time. */
  offsetMs: number | null;
  summary: string;
  /** The machine's state after the event. */
  state: StreamStateValue;
  /** Whether the machine took the event: false for an unknown event, or one its state ignores. */
  applied: boolean;
  /** An event this version cannot read: shown, never folded. */
  unknown: boolean;
  answerLength: number;
  /** How many characters the answer gained (negative when a shorter text replaced it). */
  answerDelta: number;
  /** The answer was replaced rather than extended. */
  answerReplaced: boolean;
  /** The end of the text this event added (or of the replacing text), on one line. */
  answerTail?: string;
  event: ReadEvent;
}

export interface Diagnosis {
  streamId?: string;
  state: StreamStateValue;
  finished: boolean;
  /** What ended a finished stream: `completed`, or the failure's code and message. */
  outcome?: string;
  events: number;
  unknownEvents: number;
  answerLength: number;
  openedAt?: number;
  lastEventAt?: number;
  /** The moment the diagnosis is about (now, or the time of an export). */
  asOf: number;
  /** Since the last event, at `asOf`. */
  quietMs?: number;
  lease: LeaseStatus;
  waiting?: Waiting;
  /** WeCom polls for 6 minutes after the message; past that the bubble can no longer change. */
  windowPassed: boolean;
  /** Unfinished and either its owner is gone (no live lease) or quiet for `stuckAfterMs`. */
  stuck: boolean;
  /** Why, in sentences, most telling first. */
  reasons: string[];
}

export interface ReplayReport {
  streamId?: string;
  /** The bot the stream answers for, from its `stream.opened`. */
  bot?: string;
  steps: ReplayStep[];
  diagnosis: Diagnosis;
}

export interface ReplayOptions {
  /** The owner's lease as read (a store only returns a live one); null = none. */
  lease: Lease | null;
  /** The moment to diagnose at: now for a live stream, the export's time for a file. */
  now: number;
  /** Quiet this long while unfinished counts as stuck. Default 60 s. */
  stuckAfterMs?: number;
  /** WeCom's polling window after a message (STREAM_WINDOW_SECONDS). Default 6 minutes. */
  windowMs?: number;
  /** What is known of the stream this one is queued behind, if anything. */
  behind?: { streamId: string; state: string; finished: boolean };
}

const TAIL = 24;

/** Fold the events one by one, recording each step, and diagnose the end. */
export function buildReplay(inputs: readonly ReplayInput[], options: ReplayOptions): ReplayReport {
  const firstAt = inputs.find(({ event }) => typeof event.at === 'number')?.event.at;
  let snapshot = initialStream();
  const steps: ReplayStep[] = [];
  let lastApplied: ReadEvent | undefined;
  let lastAt: number | undefined;
  for (const { seq, event } of inputs) {
    const before = snapshot;
    const applied = isKnown(event) && before.can(event);
    snapshot = evolve(before, event);
    if (applied) lastApplied = event;
    if (typeof event.at === 'number') lastAt = Math.max(lastAt ?? event.at, event.at);
    const growth = answerGrowth(before.context.answer, snapshot.context.answer);
    steps.push({
      seq,
      type: event.type,
      at: event.at ?? null,
      offsetMs: typeof event.at === 'number' && firstAt !== undefined ? event.at - firstAt : null,
      summary: summarizeEvent(event),
      state: stateOf(snapshot),
      applied,
      unknown: !isKnown(event),
      answerLength: snapshot.context.answer.length,
      ...growth,
      event,
    });
  }
  const streamId = snapshot.context.streamId || undefined;
  const bot = snapshot.context.bot || undefined;
  const diagnosis = diagnose(snapshot, steps, lastApplied, lastAt, options);
  return {
    ...(streamId ? { streamId } : {}),
    ...(bot ? { bot } : {}),
    steps,
    diagnosis: streamId ? { streamId, ...diagnosis } : diagnosis,
  };
}

function answerGrowth(
  before: string,
  after: string,
): Pick<ReplayStep, 'answerDelta' | 'answerReplaced' | 'answerTail'> {
  if (before === after) return { answerDelta: 0, answerReplaced: false };
  const extended = after.startsWith(before);
  const added = extended ? after.slice(before.length) : after;
  return {
    answerDelta: after.length - before.length,
    answerReplaced: !extended,
    ...(added ? { answerTail: oneLine(added, TAIL, 'end') } : {}),
  };
}

function diagnose(
  snapshot: StreamSnapshot,
  steps: ReplayStep[],
  lastApplied: ReadEvent | undefined,
  lastAt: number | undefined,
  options: ReplayOptions,
): Omit<Diagnosis, 'streamId'> {
  const { now } = options;
  const ctx = snapshot.context;
  const state = stateOf(snapshot);
  const finished = isFinished(snapshot);
  const windowMs = options.windowMs ?? defaultStuckSettings.windowMs;
  const stuckAfterMs = options.stuckAfterMs ?? defaultStuckSettings.stuckAfterMs;
  const queuedBehind = ctx.queuedBehind ?? '?';
  const behindState = options.behind?.streamId === queuedBehind ? options.behind.state : undefined;
  const facts: StreamFacts = {
    state,
    finished,
    openedAt: ctx.openedAt,
    ...(lastAt !== undefined ? { lastEventAt: lastAt } : {}),
    stateSince: ctx.lastEventAt,
    ...(lastApplied ? { lastTaken: lastApplied.type } : {}),
    behind: { streamId: queuedBehind, ...(behindState !== undefined ? { state: behindState } : {}) },
  };
  const found = diagnoseStuck(facts, options.lease, now, { stuckAfterMs, windowMs });
  const { lease, quietMs, waiting, windowPassed } = found;
  const base = {
    state,
    finished,
    events: steps.length,
    unknownEvents: steps.filter((s) => s.unknown).length,
    answerLength: ctx.answer.length,
    asOf: now,
    lease,
  };
  if (state === 'idle') {
    const reasons = [
      steps.length === 0
        ? 'no events: the stream does not exist, or it expired (STREAM_TTL_SECONDS)'
        : 'no stream.opened among its events: the machine never started',
    ];
    return { ...base, windowPassed, stuck: false, reasons };
  }
  const timing = { openedAt: ctx.openedAt, ...(lastAt !== undefined ? { lastEventAt: lastAt } : {}) };
  if (finished) {
    const outcome =
      state === 'completed'
        ? 'completed'
        : state === 'waiting'
          ? 'waiting for a person'
          : ctx.denied
            ? `denied: ${ctx.denied.reason}`
            : `${ctx.error?.code ?? 'error'}: ${ctx.error?.message ?? ''}`;
    const reasons = [`finished: ${outcome}`];
    const input = ctx.input;
    if (input && state === 'waiting') {
      const { form } = input;
      const expires = form.expiresAt;
      reasons.push(
        `waits for a person to choose on the card ${JSON.stringify(form.title)} [${form.actions.map((a) => a.title).join(' / ')}]: asked of ${ctx.userid}${ctx.chattype === 'group' ? ` in group ${ctx.chatid ?? '?'} (anyone there may choose)` : ''}`,
      );
      if (expires !== undefined)
        reasons.push(
          expires <= now
            ? `its form expired ${formatDuration(now - expires)} ago (${new Date(expires).toISOString()}): a click now is told so`
            : `its form expires at ${new Date(expires).toISOString()} (${formatDuration(expires - now)} left)`,
        );
    } else if (input?.outcome?.type === 'given')
      reasons.push(
        `${input.outcome.by} chose ${JSON.stringify(input.outcome.actionText)}: the run went on in stream ${input.outcome.answeredIn}`,
      );
    else if (input?.outcome?.type === 'expired')
      reasons.push(
        `the form expired before anybody chose${input.outcome.by ? ` (${input.outcome.by} clicked too late)` : ''}`,
      );
    if (ctx.resume)
      reasons.push(
        `answers the form of stream ${ctx.resume.of} with ${JSON.stringify(ctx.resume.actionText)}`,
      );
    const shown = ctx.attached?.filter((f) => f.shown) ?? [];
    const named = ctx.attached?.filter((f) => !f.shown) ?? [];
    if (shown.length || named.length)
      reasons.push(
        [
          shown.length ? `the bubble shows ${shown.length} image(s)` : '',
          named.length
            ? `names ${named.length} file(s) with a link${named.some((f) => f.reason) ? ` (${named.flatMap((f) => (f.reason ? [f.reason] : [])).join(', ')})` : ''}`
            : '',
        ]
          .filter(Boolean)
          .join('; '),
      );
    if (ctx.suggested?.length)
      reasons.push(`offers ${ctx.suggested.length} suggested question(s) as buttons`);
    if (ctx.bubble && ctx.bubble.reason === 'apart')
      reasons.push('no bubble: the answer goes as a message of its own');
    else if (ctx.bubble)
      reasons.push(`the bubble was closed early (${ctx.bubble.reason}); the rest goes by response_url`);
    if (ctx.delivery) reasons.push(`response_url delivery ${ctx.delivery.status}`);
    return {
      ...base,
      ...timing,
      ...(quietMs !== undefined ? { quietMs } : {}),
      outcome,
      windowPassed,
      stuck: false,
      reasons,
    };
  }

  const reasons: string[] = [];
  const last = [...steps].reverse().find((s) => s.at !== null);
  if (quietMs !== undefined) {
    reasons.push(
      `no event for ${formatDuration(quietMs)} (the last: ${last?.type ?? '?'} at ${new Date(lastAt ?? 0).toISOString()})`,
    );
  }
  switch (lease.status) {
    case 'none':
      reasons.push(
        'no live lease: its owner is gone (the lease ran out, was handed back, or was never taken); the next poll or a node\u2019s sweep takes it over',
      );
      break;
    case 'expired':
      reasons.push(
        `the lease of ${lease.node} expired ${formatDuration(lease.expiredMs)} ago: its owner is gone; the next poll or a node\u2019s sweep takes it over`,
      );
      break;
    case 'held':
      reasons.push(
        `held by node ${lease.node} until ${new Date(lease.until).toISOString()} (${formatDuration(lease.remainingMs)} left): its owner is alive`,
      );
      break;
  }
  if (waiting) reasons.push(describeWaiting(waiting));
  if (ctx.takeovers > 0)
    reasons.push(`taken over ${ctx.takeovers} time(s); now owned by ${ctx.node ?? 'nobody'}`);
  if (ctx.bubble)
    reasons.push(
      `the bubble was closed (${ctx.bubble.reason}); the answer will go by response_url when it ends`,
    );
  else if (windowPassed)
    reasons.push(
      `WeCom stopped polling ${formatDuration(windowMs)} after the message (at ${new Date(ctx.openedAt + windowMs).toISOString()}): the bubble can no longer change`,
    );
  return {
    ...base,
    ...timing,
    ...(quietMs !== undefined ? { quietMs } : {}),
    ...(waiting ? { waiting } : {}),
    windowPassed,
    stuck: found.stuck !== undefined,
    reasons,
  };
}

function describeWaiting(w: Waiting): string {
  const since = `since ${new Date(w.since).toISOString()} (${formatDuration(w.forMs)})`;
  switch (w.on) {
    case 'auth':
      return `waiting on authentication ${since}`;
    case 'queue':
      return `queued behind ${w.behind} ${since}${w.behindState ? `; that stream is ${w.behindState}` : ''}`;
    case 'dify-start':
      return `waiting for the Dify call to start ${since}`;
    case 'dify':
      return `waiting on Dify ${since}: the last event was ${w.lastEvent}`;
  }
}

/** The report as terminal lines: a header, one line per event, then the diagnosis. */
export function formatReplay(report: ReplayReport): string[] {
  const { steps, diagnosis: d } = report;
  const lines: string[] = [];
  const opened = steps.find((s) => s.event.type === 'stream.opened' && !s.unknown);
  const of = report.bot ? ` · bot ${report.bot}` : '';
  lines.push(`stream ${report.streamId ?? '(unknown id)'}${opened ? ` · ${opened.summary}` : ''}${of}`, '');
  const rows = steps.map((s) => [
    s.offsetMs === null ? '?' : formatOffset(s.offsetMs),
    s.unknown ? `${s.type} (unknown)` : s.type,
    s.applied ? s.state : s.unknown ? `(${s.state})` : `(${s.state}, ignored)`,
    String(s.answerLength),
    growthCell(s),
    s.summary,
  ]);
  if (rows.length > 0)
    lines.push(
      ...formatTable(['TIME', 'EVENT', 'STATE', 'ANSWER', 'GREW', 'DETAIL'], rows, new Set([0, 3, 4])),
    );
  else lines.push('(no events)');
  lines.push('');
  const span =
    d.openedAt !== undefined && d.lastEventAt !== undefined
      ? ` over ${formatDuration(d.lastEventAt - d.openedAt)}`
      : '';
  const counts = `${d.events} event${d.events === 1 ? '' : 's'}${d.unknownEvents ? ` (${d.unknownEvents} unknown)` : ''}`;
  if (d.finished) {
    const outcome = d.state === 'completed' ? '' : ` (${d.outcome ?? ''})`;
    lines.push(`final state: ${d.state}${outcome}, ${counts}${span}, answer ${d.answerLength} chars`);
    for (const reason of d.reasons.slice(1)) lines.push(`  ${reason}`);
  } else {
    const verdict = d.state === 'idle' ? '' : d.stuck ? ' — STUCK' : ' — still running';
    lines.push(`final state: ${d.state}, not finished${verdict}; ${counts}, answer ${d.answerLength} chars`);
    for (const reason of d.reasons) lines.push(`  ${reason}`);
  }
  return lines;
}

/** `+3` when the answer grew by 3 characters, `=5` when it was replaced by 5; the text is in DETAIL. */
function growthCell(s: ReplayStep): string {
  if (s.answerDelta === 0 && !s.answerReplaced) return '';
  return s.answerReplaced ? `=${s.answerLength}` : `+${s.answerDelta}`;
}
