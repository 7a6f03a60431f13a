// A TCP proxy in front of Redis with a tripwire: it forwards both ways until a client sends bytes
// that contain a marker, and from then on forwards nothing more from any client (the command that
// carried the marker never reaches Redis). Used to freeze a node at an exact point of its work,
// before killing it: "right before its first write about this message reached Redis".
import { createServer, type Server, type Socket } from 'node:net';

export interface TripwireProxy {
  port: number;
  /** Resolves when a client sent the marker (and it was held back). */
  tripped: Promise<void>;
  close(): Promise<void>;
}

export async function startTripwireProxy(
  target: { host: string; port: number },
  marker: string,
): Promise<TripwireProxy> {
  const needle = Buffer.from(marker);
  const sockets = new Set<Socket>();
  let isTripped = false;
  let trip!: () => void;
  const tripped = new Promise<void>((resolve) => {
    trip = resolve;
  });
  const server: Server = createServer((client) => {
    const upstream = new (client.constructor as typeof Socket)();
    sockets.add(client).add(upstream);
    upstream.connect(target.port, target.host);
    // A marker may straddle two chunks: keep the tail of the last one.
    let tail = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      if (isTripped) return;
      const seen = Buffer.concat([tail, chunk]);
      if (seen.includes(needle)) {
        isTripped = true;
        trip();
        return;
      }
      tail = seen.subarray(Math.max(0, seen.length - needle.length));
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!isTripped) client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    tripped,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
