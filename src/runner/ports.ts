// What the runner needs from the outside world, as narrow interfaces: the Dify answer source and the
// response_url delivery. The real adapters live in src/dify and src/wecom; tests may pass fakes.
export type DifyEvent =
  | { type: 'conversation_reset' }
  | { type: 'started'; conversationId?: string; messageId?: string; taskId?: string; workflowRunId?: string }
  | { type: 'delta'; text: string }
  | { type: 'replace'; text: string }
  | { type: 'end'; usage?: Record<string, unknown> };

export interface DifyStreamRequest {
  query: string;
  user: string;
  conversationId?: string;
  inputs?: Record<string, string>;
  bearer?: string;
  signal?: AbortSignal;
}

export interface AnswerSource {
  stream(request: DifyStreamRequest): AsyncIterable<DifyEvent>;
  stop(taskId: string, user: string, options?: { bearer?: string }): Promise<void>;
}

/** Posts a markdown message to a WeCom response_url (reference/wecom-aibot.md §8). */
export interface Delivery {
  deliver(responseUrl: string, markdown: string): Promise<void>;
}
