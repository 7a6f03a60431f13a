// The export file's bot, and the refusal `--bot` makes of another bot's stream.
import { describe, expect, it } from 'vitest';
import { granted, opened } from '../machines/specification.js';
import type { StoredEvent } from '../store/port.js';
import { botOf, otherBotProblem, parseExport, toExport } from './exportFile.js';

const stored = (...events: StoredEvent['event'][]): StoredEvent[] =>
  events.map((event, i) => ({ seq: i + 1, id: `${i + 1}-0`, event }));

describe('the bot of an exported stream', () => {
  it('is the one its stream.opened names, written into the export', () => {
    const events = stored(opened({ streamId: 's-1', bot: 'hr' }), granted());
    expect(botOf(events)).toBe('hr');
    expect(toExport('s-1', events, undefined, 1)).toMatchObject({ streamId: 's-1', bot: 'hr' });
  });

  it('is none before the stream opened, and the export then has no bot', () => {
    expect(botOf(stored(granted()))).toBeUndefined();
    expect(toExport('s-1', stored(granted()), undefined, 1)).not.toHaveProperty('bot');
  });

  it('an export written before bots were named still reads', () => {
    const { bot: _bot, ...older } = toExport('s-1', stored(opened({ bot: 'hr' })), undefined, 1);
    const parsed = parseExport(JSON.stringify(older));
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(botOf(parsed.events)).toBe('hr');
  });
});

describe('--bot', () => {
  it('lets the named bot’s stream through, and any stream when no bot is named', () => {
    expect(otherBotProblem('s-1', 'hr', 'hr')).toBeUndefined();
    expect(otherBotProblem('s-1', 'it', undefined)).toBeUndefined();
  });

  it('refuses another bot’s stream, saying whose it is', () => {
    expect(otherBotProblem('s-1', 'it', 'hr')).toBe("stream s-1 is bot it's, not hr");
    expect(otherBotProblem('s-1', undefined, 'hr')).toBe(
      'stream s-1 names no bot (it has no stream.opened), not hr',
    );
  });
});
