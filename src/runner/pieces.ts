// The pieces of an answer as its source sends them (a few characters, twenty times a second and
// more), told to the stream together: one `add` for what came within ~150 ms (or ~1 KB). Deciding,
// folding and recording then run a few times a second for an answer, not once per piece, and a long
// answer is tens of events, not thousands; a poll still sees the text within the same ~150 ms. The
// pieces waiting are told before anything else the owner is told, so the order holds.
//
// The streams of a node share their clock: pieces due within the same few milliseconds are told in one
// timer's turn, so that their appends leave for Redis as one write (one pipeline), not one system call
// per stream and per flush.

export interface PieceOptions {
  /** The longest a piece waits to be told (ms). Default 150. */
  flushMs?: number | undefined;
  /** Told at once when this much text waits (bytes). Default 1024. */
  flushBytes?: number | undefined;
}

/** The clock's grain: pieces are told up to this much before their `flushMs`, with others due then. */
const GRAIN_MS = 20;

/** The pieces due in each grain of time, and the timer that tells them. */
const slots = new Map<number, Set<Pieces>>();

function due(pieces: Pieces, at: number): Set<Pieces> {
  const slot = Math.floor(at / GRAIN_MS);
  let due = slots.get(slot);
  if (!due) {
    const those = new Set<Pieces>();
    due = those;
    slots.set(slot, those);
    const timer = setTimeout(
      () => {
        slots.delete(slot);
        for (const p of those) p.flush();
      },
      Math.max(0, slot * GRAIN_MS - Date.now()),
    );
    timer.unref();
  }
  due.add(pieces);
  return due;
}

export class Pieces {
  #text = '';
  #at = 0;
  /** The pieces due with these, while some wait. */
  #due: Set<Pieces> | undefined;
  readonly #flushMs: number;
  readonly #flushBytes: number;

  constructor(
    /** Tells the pieces waiting, as one: all their text, the time of the last. */
    private readonly tell: (text: string, at: number) => void,
    options: PieceOptions = {},
  ) {
    this.#flushMs = options.flushMs ?? 150;
    this.#flushBytes = options.flushBytes ?? 1024;
  }

  add(text: string, at: number): void {
    this.#text += text;
    this.#at = at;
    // A UTF-16 code unit is at most 3 bytes of UTF-8: the text is measured only once it may be long
    // enough (this runs for every piece of every answer).
    if (this.#text.length * 3 >= this.#flushBytes && Buffer.byteLength(this.#text) >= this.#flushBytes)
      this.flush();
    else this.#due ??= due(this, Date.now() + this.#flushMs);
  }

  /** Tell what waits, now. */
  flush(): void {
    this.#due?.delete(this);
    this.#due = undefined;
    if (this.#text === '') return;
    const text = this.#text;
    this.#text = '';
    this.tell(text, this.#at);
  }

  /** Drop what waits (the owner ended). */
  dispose(): void {
    this.#due?.delete(this);
    this.#due = undefined;
    this.#text = '';
  }
}
