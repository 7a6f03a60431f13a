// What the runner needs from the outside world, as narrow interfaces: the Dify answer source, the
// response_url delivery and the download of what users send. The real adapters live in src/dify and
// src/wecom; tests may pass fakes.
export type DifyEvent =
  | { type: 'conversation_reset' }
  | { type: 'started'; conversationId?: string; messageId?: string; taskId?: string; workflowRunId?: string }
  | { type: 'delta'; text: string }
  | { type: 'replace'; text: string }
  | { type: 'end'; usage?: Record<string, unknown> };

/** A file already uploaded to Dify, as a chat request names it (dify-api.md §2.1). */
export interface DifyFileRef {
  type: 'image' | 'document';
  transfer_method: 'local_file';
  upload_file_id: string;
}

export interface DifyStreamRequest {
  query: string;
  user: string;
  conversationId?: string;
  inputs?: Record<string, string>;
  files?: DifyFileRef[];
  bearer?: string;
  signal?: AbortSignal;
}

export interface AnswerSource {
  stream(request: DifyStreamRequest): AsyncIterable<DifyEvent>;
  stop(taskId: string, user: string, options?: { bearer?: string }): Promise<void>;
  /** Rate an answer (`null` takes a rating back); absent where the source takes no ratings. */
  feedback?(
    messageId: string,
    rating: 'like' | 'dislike' | null,
    user: string,
    content?: string,
    options?: { bearer?: string },
  ): Promise<void>;
  /** Upload a file for a later request's `files`; absent where the source takes no files. */
  upload?(
    file: { data: Uint8Array; filename: string; contentType: string },
    user: string,
    options?: { bearer?: string; signal?: AbortSignal },
  ): Promise<{ id: string }>;
}

/** Posts a markdown message to a WeCom response_url (reference/wecom-aibot.md §8). */
export interface Delivery {
  deliver(responseUrl: string, markdown: string): Promise<void>;
}

/** Downloads and decrypts an image or file a user sent (reference/wecom-aibot.md §7). */
export interface MediaSource {
  fetch(
    url: string,
    kind: 'image' | 'file',
  ): Promise<{ data: Buffer; filename: string; contentType: string }>;
}
