// The Dify client: streaming runs, typed errors, SSE frames. Re-exports only.
export {
  type DifyAppType,
  DifyClient,
  type DifyClientOptions,
  type DifyStreamRequest,
} from './client.js';
export {
  DifyError,
  type DifyIds,
  fromErrorFrame,
  fromHttpResponse,
  fromNetworkError,
  isDifyError,
  isKnownCode,
} from './errors.js';
export { AnswerFold, type DifyEvent } from './events.js';
export { type DifyFrame, DifyFrameReader, FrameTooLargeError, parseFrame } from './sse.js';
