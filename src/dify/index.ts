// The Dify client: streaming runs, typed errors, SSE frames. Re-exports only.
export {
  type DifyAppInfo,
  type DifyAppType,
  type DifyCallOptions,
  DifyClient,
  type DifyClientOptions,
  type DifyFile,
  type DifyLogger,
  type DifyRetryOptions,
  type DifyStreamRequest,
  type DifyUploadedFile,
} from './client.js';
export {
  classify,
  DifyError,
  type DifyErrorInit,
  type DifyErrorKind,
  type DifyErrorPhase,
  type DifyIds,
  fromErrorFrame,
  fromHttpResponse,
  fromNetworkError,
  isDifyError,
  isKnownCode,
  snippetOf,
} from './errors.js';
export { AnswerFold, type DifyEvent } from './events.js';
export {
  type DifyFrame,
  type DifyFrameBody,
  DifyFrameReader,
  FrameTooLargeError,
  MAX_FRAME_CHARS,
  parseFrame,
} from './sse.js';
