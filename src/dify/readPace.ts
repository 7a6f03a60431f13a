// Dify's event streams, read a few times a second. An answer comes a few characters at a time, twenty
// times a second and more, each piece in a TCP segment of its own. Read as it comes, every piece costs
// a system call and a pass through Node's socket stream, undici's HTTP parser and its body stream before
// the SSE reader sees it: a third to a half of what a node spends on an answer in flight. Instead, the
// sockets that carry event streams are read in turns: between its turns a socket does not read (the
// kernel keeps what comes), and in its turn one read takes all that came meanwhile, and the SSE reader
// gets the pieces together.
//
// A piece then waits at most `everyMs` before it is read, the wait it had anyway in the owner's pieces
// (src/runner/pieces.ts): the owner of an answer whose source is paced tells what a read brought at
// once (`AnswerSource.paceMs`), so an answer is seen as soon as before, and a node does a third of the
// reads. The sockets are spread over `turns` turns of `everyMs`, so that a node's reading comes evenly,
// not all of it once every `everyMs`.
//
// Node offers no public hold on a socket's reads (`pause()` stops handing on what was read, not the
// reading): the socket handle's `readStop`/`readStart`, which Node's own streams use to hold reads
// under back-pressure, are used where a socket has them (a TLS socket's handle, the TLS layer, holds
// the connection under it: the records that came are then read at once, and decrypted one by one). Its
// `reading` flag is left set while the read is held, so that Node does not start it again itself; a
// read Node holds for its own reasons (the flag is cleared) is never started here. A socket whose
// handle lacks them is read as it comes.
import type { Socket } from 'node:net';
import { buildConnector } from 'undici';

/** The read controls of a socket's handle (a libuv stream: TCP, a pipe). */
interface ReadHandle {
  reading: boolean;
  readStart(): number;
  readStop(): number;
}

function readHandleOf(socket: Socket): ReadHandle | undefined {
  const handle = (socket as unknown as { _handle?: Partial<ReadHandle> | null })._handle;
  if (
    !handle ||
    typeof handle.readStart !== 'function' ||
    typeof handle.readStop !== 'function' ||
    typeof handle.reading !== 'boolean'
  )
    return undefined;
  return handle as ReadHandle;
}

export interface ReadPaceOptions {
  /** How long a socket's reads are held at most (ms). Default 150. */
  everyMs?: number;
  /** How many groups the sockets are spread over, each read in its own turn. Default 6. */
  turns?: number;
}

export class ReadPace {
  readonly everyMs: number;
  /** Each turn's sockets, and whether their read is held here now. */
  readonly #turns: Array<Map<Socket, boolean>>;
  #next = 0;
  #turn = 0;
  #timer: NodeJS.Timeout | undefined;
  #size = 0;

  constructor(options: ReadPaceOptions = {}) {
    this.everyMs = options.everyMs ?? 150;
    const turns = Math.max(1, Math.floor(options.turns ?? 6));
    this.#turns = Array.from({ length: turns }, () => new Map<Socket, boolean>());
  }

  /** How many sockets are read in turns now. */
  get size(): number {
    return this.#size;
  }

  /** Read this socket in turns from now on, until it closes; one without the handle for it, as it comes. */
  add(socket: Socket): void {
    if (readHandleOf(socket) === undefined) return;
    const turn = this.#turns[this.#next] as Map<Socket, boolean>;
    this.#next = (this.#next + 1) % this.#turns.length;
    turn.set(socket, false);
    this.#size++;
    socket.once('close', () => {
      if (turn.delete(socket)) this.#size--;
    });
    // Kept alive while sockets are paced: a socket whose read is held does not keep the process
    // alive (it would end in the middle of an answer); the timer does, until the last one closes
    // (undici closes an idle socket after its keep-alive timeout).
    this.#timer ??= setInterval(() => this.#tick(), this.everyMs / this.#turns.length);
  }

  #tick(): void {
    if (this.#size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const turn = this.#turns[this.#turn] as Map<Socket, boolean>;
    this.#turn = (this.#turn + 1) % this.#turns.length;
    for (const [socket, held] of turn) {
      if (!held) continue;
      turn.set(socket, false);
      const handle = readHandleOf(socket);
      if (handle?.reading && handle.readStart() !== 0) handle.reading = false;
    }
    // What the kernel kept is read in this turn of the event loop; then the reads are held again.
    if (turn.size > 0) setImmediate(() => this.#hold(turn));
  }

  #hold(turn: Map<Socket, boolean>): void {
    for (const socket of turn.keys()) {
      // A destroyed socket has no handle any more.
      const handle = readHandleOf(socket);
      if (!handle?.reading) continue;
      // A handle that cannot stop reading goes on reading, as any socket does.
      if (handle.readStop() === 0) turn.set(socket, true);
    }
  }
}

/** The pace a node's Dify event streams are read at: one for all bots, so that their reads share turns. */
export const difyReads = new ReadPace();

/** An undici connector (`Agent`'s `connect`) whose sockets `pace` reads in turns. */
export function pacedConnector(
  pace: ReadPace,
  options: buildConnector.BuildOptions,
): buildConnector.connector {
  const connect = buildConnector(options);
  return (opts, callback) =>
    connect(opts, (...args) => {
      if (args[0] === null) pace.add(args[1]);
      callback(...args);
    });
}
