// A test's answer source written as an async generator (its scene: pieces, pauses), in the push form
// the runner's port takes: each event handed on as the generator yields it.
import type { AnswerEvent, AnswerRequest, AnswerSource } from '../../src/runner/ports.js';

export function answering(
  scene: (request: AnswerRequest) => AsyncIterable<AnswerEvent>,
): AnswerSource['answer'] {
  return async (request, onEvent) => {
    for await (const event of scene(request)) {
      // Let go (the owner aborted, or said so): leaving the loop ends the scene, as a source stops.
      if (request.signal?.aborted || onEvent(event) === false) return;
    }
  };
}
