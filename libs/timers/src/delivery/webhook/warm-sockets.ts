import { Socket } from 'node:net';
import { buildConnector } from 'undici';

/**
 * Connections to webhook origins opened ahead of the POSTs that will use them: `open` starts them (armed
 * timers are known up to the scheduler's lookahead before their run time), and `connector`, undici's
 * connect function, hands one out whenever undici needs a new connection to that origin, else connects
 * as usual. Why: a burst to an origin with no open connection otherwise starts with as many TCP (and TLS)
 * handshakes as requests in flight, and the worker creating, connecting and serving those sockets is
 * where the burst's first tens of milliseconds went.
 *
 * A socket is opened by the same connector undici uses (its options, the SSRF-checking lookup and the
 * connect timeout included), so undici cannot tell it apart from one it opened itself. One the server
 * closes while it waits is dropped; one not handed out within `idleMs` is closed.
 */
export class WarmSockets {
  private readonly connect: buildConnector.connector;
  /** Connected sockets waiting for undici, by origin (`protocol//host[:port]`). */
  private readonly ready = new Map<string, WaitingSocket[]>();
  /** Connections being opened, by origin. */
  private readonly openingCount = new Map<string, number>();
  private total = 0;
  private closed = false;

  constructor(
    options: buildConnector.BuildOptions,
    /** Sockets opened and waiting, over all origins, at most. */
    private readonly max: number,
    private readonly idleMs: number,
  ) {
    this.connect = buildConnector(options);
  }

  /** undici's `connect` option. */
  readonly connector: buildConnector.connector = (options, callback) => {
    const socket = this.take(`${options.protocol}//${options.host}`);
    if (!socket) return this.connect(options, callback);
    // Asynchronously, as a new connection would be: undici is in the middle of its dispatch.
    queueMicrotask(() => callback(null, socket));
  };

  /** Sockets open or being opened to the origin and not handed out yet. */
  waiting(origin: string): number {
    return (this.ready.get(origin)?.length ?? 0) + (this.openingCount.get(origin) ?? 0);
  }

  /** Connections to the origin still being opened. */
  opening(origin: string): number {
    return this.openingCount.get(origin) ?? 0;
  }

  /** Starts opening `count` connections to the origin (fewer if the overall cap is reached). */
  open(origin: string, count: number): void {
    const url = new URL(origin);
    // As undici passes it: an IPv6 address without its brackets.
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    for (let i = 0; i < count && this.total < this.max && !this.closed; i++) {
      this.total++;
      this.openingCount.set(origin, (this.openingCount.get(origin) ?? 0) + 1);
      this.connect({ hostname, host: url.host, protocol: url.protocol, port: url.port }, (error, socket) => {
        this.openingCount.set(origin, this.openingCount.get(origin)! - 1);
        if (error || !socket || this.closed) {
          this.total--;
          socket?.destroy();
          return;
        }
        this.keep(origin, socket);
      });
    }
  }

  /** Closes the sockets not handed out; opens no more. */
  close(): void {
    this.closed = true;
    for (const waiting of this.ready.values())
      for (const { socket, release } of waiting) {
        release();
        socket.destroy();
      }
    this.ready.clear();
  }

  private keep(origin: string, socket: Socket): void {
    let waiting = this.ready.get(origin);
    if (!waiting) this.ready.set(origin, (waiting = []));
    const drop = () => this.drop(origin, entry);
    const idle = setTimeout(() => {
      drop();
      socket.destroy();
    }, this.idleMs);
    idle.unref();
    const entry: WaitingSocket = {
      socket,
      release: () => {
        clearTimeout(idle);
        socket.off('close', drop).off('error', drop);
      },
    };
    socket.once('close', drop).on('error', drop);
    waiting.push(entry);
  }

  private take(origin: string): Socket | undefined {
    const waiting = this.ready.get(origin);
    for (let entry = waiting?.pop(); entry; entry = waiting!.pop()) {
      this.total--;
      entry.release();
      if (!entry.socket.destroyed && entry.socket.readyState === 'open') return entry.socket;
      entry.socket.destroy();
    }
    return undefined;
  }

  private drop(origin: string, entry: WaitingSocket): void {
    const waiting = this.ready.get(origin);
    const at = waiting?.indexOf(entry) ?? -1;
    if (at < 0) return;
    waiting!.splice(at, 1);
    this.total--;
    entry.release();
  }
}

interface WaitingSocket {
  socket: Socket;
  /** Removes the socket's listeners and idle timer (it is handed out or dropped). */
  release: () => void;
}
