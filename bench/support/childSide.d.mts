// The types of childSide.mjs (plain JavaScript, so that a bench child may run without a loader).

export type Handler = (arg: unknown) => unknown;

export interface ReadyInfo {
  port: number;
  /** A base URL when it is not `http://127.0.0.1:<port>` (the fake Dify's ends in /v1). */
  url?: string;
}

/** What the parent may send. */
export type ParentMessage = { type: 'stop' } | { type: 'call'; id: number; name: string; arg?: unknown };

/** What the child answers. */
export type ChildMessage =
  | { type: 'ready'; info: ReadyInfo }
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number; ok: false; error: string };

/** The process's own cost so far, for CPU per request: `user`/`system` µs, event-loop utilization. */
export interface ProcessStats {
  user: number;
  system: number;
  elu: { idle: number; active: number };
  rss: number;
}

export function serveParent(handlers: Record<string, Handler>, stop: () => Promise<void>): void;
export function announceReady(info: ReadyInfo): void;
export function sampleAllocations(
  dir: string | undefined,
  name: string,
): Promise<(() => Promise<void>) | undefined>;
