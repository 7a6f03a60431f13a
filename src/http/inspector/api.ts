// The inspector's JSON API, as the routes send it and the page (assets/inspector.js) reads it. Plain
// data, importing nothing but the chart's and the diagnosis's types (pure too): the page's own type
// check, which has the
// browser's types and not Node's, loads this file, so the two sides cannot drift apart unnoticed.
import type { StuckDiagnosis, StuckReason } from '../../diagnosis/stuck.js';

export type { Chart, ChartEdge, ChartNode } from './chart.js';
export type { StuckDiagnosis, StuckReason };

/** Who holds a stream, and until when (epoch ms). */
export interface LeaseView {
  node: string;
  until: number;
}

/** One row of the live list. */
export interface StreamRow {
  streamId: string;
  /** The bot the stream answers for (`default` for the one bot of a deployment without a bots file). */
  bot: string;
  userid: string;
  state: string;
  openedAt: number;
  lastEventAt: number;
  answerLength: number;
  finished: boolean;
  lease?: LeaseView | undefined;
  /** The lease has not run out by the server's clock. */
  leaseLive: boolean;
  /** Set when the stream is unfinished and stuck: its owner is gone, or it has been quiet too long. */
  stuck?: StuckReason | undefined;
}

/** `GET /inspector/api/streams`, `?bot=<id>` for one bot's streams. */
export interface StreamList {
  /** The server's clock, so that the page shows ages without trusting the browser's. */
  now: number;
  streams: StreamRow[];
}

/** The stream's context, every field of which the page lists; these it also reads by name. */
export interface StreamContextView {
  [field: string]: unknown;
  bot: string;
  userid: string;
  chatid?: string | undefined;
  query: string;
  openedAt: number;
  lastEventAt: number;
}

/**
 * `moved`: the event took a transition to another state; `stayed`: a transition that keeps the state
 * (it may still change the context); `ignored`: the state does not take this event (the fold skips
 * it); `unknown`: this version cannot read the event (the fold skips it too).
 */
export type StepOutcome = 'moved' | 'stayed' | 'ignored' | 'unknown';

export interface Step {
  /** 1-based position of the event in the stream. */
  seq: number;
  /** The store's id of the entry. */
  id: string;
  type: string;
  at?: number;
  /** Milliseconds since the first event that has a time. */
  offsetMs?: number;
  summary: string;
  outcome: StepOutcome;
  /** The state before the event, and after it. */
  from: string;
  state: string;
  answerLength: number;
  /**
   * The bubble after this step, as the previous step's content cut to `keep` characters plus `add`:
   * an answer that grows by deltas then costs its deltas, not its whole text at every step.
   */
  bubble: { finish: boolean; keep: number; add: string };
  /** The images the finished bubble shows (their bytes are not kept: what and how large). */
  images?: Array<{ name?: string; bytes?: number }>;
  /** The card the bubble's finishing reply carries: a form's buttons, or suggested questions. */
  card?: { title: string; desc?: string; sub?: string; buttons: string[] };
}

/** `GET /inspector/api/streams/:id`. */
export interface StreamDetail {
  now: number;
  streamId: string;
  /** How many events the stream has. */
  version: number;
  state: string;
  finished: boolean;
  running: boolean;
  /** The context after the last event, without the answer (its length is `answerLength`). */
  context: StreamContextView;
  answerLength: number;
  lease: LeaseView | null;
  leaseLive: boolean;
  /** Why it stands still: its owner, its quiet, what it waits for, WeCom's window. */
  diagnosis: StuckDiagnosis;
  steps: Step[];
}

/** Every refusal, with a message safe to show. */
export interface ApiError {
  error: string;
  message: string;
}
