// `advance` folds a streaming answer's pieces without a transition: it must give what the machine's
// own transition gives, the state, the context and the effects, for any history.
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from './events.js';
import { advance, initialStream, persist, type StreamView, step } from './fold.js';
import {
  bubbleClosed,
  completed,
  delta,
  difyStarted,
  failed,
  granted,
  opened,
  prng,
  queued,
  released,
  replaced,
  T0,
  takenOver,
} from './specification.js';

const pieces = ['你好', ' world', '🌏', '', '\n', '长'.repeat(50), 'é'];

/** A history the owner could write, and some it could not: pieces of text in every state. */
function history(random: () => number): StreamEvent[] {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const events: StreamEvent[] = [opened()];
  for (let i = 0; i < 60; i++) {
    const roll = random();
    const at = T0 + i;
    const event: StreamEvent =
      roll < 0.55
        ? delta(pick(pieces))
        : pick([
            granted(),
            difyStarted(),
            replaced(pick(pieces)),
            takenOver('n2', 1 + Math.floor(random() * 3)),
            queued(),
            bubbleClosed('overflow'),
            released(),
            completed(),
            failed(),
          ]);
    events.push({ ...event, at });
  }
  return events;
}

describe('advance', () => {
  it('folds every history as the machine does: state, context and effects', () => {
    const seed = Number(process.env.ADVANCE_SEED ?? Math.floor(Math.random() * 2 ** 31));
    for (let n = 0; n < 300; n++) {
      const random = prng(seed * 1000 + n);
      let fast: StreamView = initialStream();
      let machine = initialStream();
      for (const [i, event] of history(random).entries()) {
        const [nextFast, fastEffects] = advance(fast, event);
        const [nextMachine, machineEffects] = step(machine, event);
        const why = `ADVANCE_SEED=${seed}, history ${n}, event ${i} (${event.type})`;
        expect(persist(nextFast), why).toEqual(persist(nextMachine));
        expect(fastEffects, why).toEqual(machineEffects);
        fast = nextFast;
        machine = nextMachine;
      }
    }
  });

  it('takes a streaming piece without the machine, and anything else through it', () => {
    const streaming = [opened(), granted(), delta('a')].reduce<StreamView>(
      (s, e) => advance(s, e)[0],
      initialStream(),
    );
    const [after] = advance(streaming, delta('b'));
    expect(after).not.toHaveProperty('machine');
    expect(after.context).toMatchObject({ answer: 'ab', answerBytes: 2 });
    const [done, effects] = advance(after, completed());
    expect(done).toHaveProperty('machine');
    expect(effects).toEqual([{ type: 'finish' }]);
  });
});
