import { createServer, connect, Server, Socket } from 'node:net';

/** What the proxy does to the next reply a server sends back, once armed. */
export type ReplyFault = 'drop-and-cut' | 'drop-and-go-silent';

interface Link {
  client: Socket;
  server: Socket;
  /** Moves nothing more either way, and stays open: a half-dead connection. */
  silent?: boolean;
}

/** Random network faults for a chaos run: how often, and the random source that decides (seed it). */
export interface ChaosOptions {
  /** Returns a float in [0, 1); a seeded source makes the fault sequence repeatable. */
  random: () => number;
  /** Mean time between cuts of one random open connection. */
  meanCutIntervalMs: number;
  /** Mean time between dropped replies (`dropNextReply`, armed again once the last one happened). */
  meanDropIntervalMs: number;
}

/** Faults the chaos mode actually caused (an armed drop that never fired is not counted). */
export interface ChaosCounts {
  connectionCuts: number;
  droppedReplies: number;
}

/**
 * A TCP proxy on loopback that injects the network faults the exactness guarantees must survive: cut
 * every connection, let a request reach the server and drop its reply (then cut, as a dead link does),
 * hold traffic, or point at another server (a failover). Speaks no protocol: it moves bytes.
 */
export class FaultProxy {
  private server?: Server;
  private readonly links = new Set<Link>();
  private replyFault?: { fault: ReplyFault; matching?: (reply: Buffer) => boolean; armed: () => void };
  private held = false;
  private chaos?: { timers: Set<NodeJS.Timeout>; counts: ChaosCounts };
  port = 0;

  constructor(
    private targetPort: number,
    private readonly targetHost = '127.0.0.1',
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Connections currently open through the proxy. */
  get connections(): number {
    return this.links.size;
  }

  async start(port = 0): Promise<this> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  /** New connections go to this port from now on (open ones are left alone; `cutAll` them to move them). */
  retarget(port: number): void {
    this.targetPort = port;
  }

  /** Destroys every open connection in both directions, as a network failure does. */
  cutAll(): void {
    for (const link of this.links) this.close(link);
  }

  /**
   * The next bytes any server sends back are discarded and that connection is cut: the request ran on
   * the server, the client never hears of it. Resolves once it happened.
   */
  dropNextReply(): Promise<void> {
    return this.armReplyFault('drop-and-cut');
  }

  /**
   * The next bytes any server sends back are discarded and that connection goes silent: it stays open
   * and moves nothing more either way, as one does whose peer vanished without a reset (a host gone, a
   * NAT or firewall that dropped the flow). The request ran on the server; the client never hears of it
   * nor of the connection's end. `matching` picks the reply (e.g. not a `+PONG`). Resolves once it happened.
   */
  silenceNextReply(matching?: (reply: Buffer) => boolean): Promise<void> {
    return this.armReplyFault('drop-and-go-silent', matching);
  }

  private armReplyFault(fault: ReplyFault, matching?: (reply: Buffer) => boolean): Promise<void> {
    return new Promise((resolve) => {
      this.replyFault = { fault, matching, armed: resolve };
    });
  }

  /** Every open connection goes silent (see `silenceNextReply`); new connections work. */
  silenceAll(): void {
    for (const link of this.links) link.silent = true;
  }

  /** Stops moving bytes both ways (they wait in the sockets) until `release`. */
  hold(): void {
    this.held = true;
    for (const link of this.links) {
      link.client.pause();
      link.server.pause();
    }
  }

  release(): void {
    this.held = false;
    for (const link of this.links) {
      link.client.resume();
      link.server.resume();
    }
  }

  /**
   * Random mode: until `stopChaos`, cuts one random open connection now and then, and drops a reply
   * (request executed, reply lost, connection cut) now and then. Intervals are uniform in 0.5x..1.5x of
   * the means, all drawn from `options.random`.
   */
  startChaos(options: ChaosOptions): void {
    if (this.chaos) throw new Error('chaos mode is already running');
    const chaos = { timers: new Set<NodeJS.Timeout>(), counts: { connectionCuts: 0, droppedReplies: 0 } };
    this.chaos = chaos;
    const every = (meanMs: number, fault: () => Promise<unknown> | void) => {
      const timer = setTimeout(
        async () => {
          chaos.timers.delete(timer);
          await fault();
          if (this.chaos === chaos) every(meanMs, fault);
        },
        meanMs * (0.5 + options.random()),
      );
      chaos.timers.add(timer);
    };
    every(options.meanCutIntervalMs, () => {
      const links = [...this.links];
      if (links.length === 0) return;
      this.close(links[Math.floor(options.random() * links.length)]);
      chaos.counts.connectionCuts += 1;
    });
    // One drop armed at a time: the next is drawn only once this one hit a reply.
    every(options.meanDropIntervalMs, () =>
      this.dropNextReply().then(() => {
        if (this.chaos === chaos) chaos.counts.droppedReplies += 1;
      }),
    );
  }

  /** Ends the random mode (a drop still armed is disarmed) and returns what it did. */
  stopChaos(): ChaosCounts {
    const chaos = this.chaos;
    if (!chaos) return { connectionCuts: 0, droppedReplies: 0 };
    this.chaos = undefined;
    for (const timer of chaos.timers) clearTimeout(timer);
    this.replyFault = undefined;
    return { ...chaos.counts };
  }

  async stop(): Promise<void> {
    this.stopChaos();
    this.cutAll();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  private accept(client: Socket): void {
    const server = connect(this.targetPort, this.targetHost);
    const link: Link = { client, server };
    this.links.add(link);
    client.setNoDelay(true);
    server.setNoDelay(true);
    if (this.held) {
      client.pause();
      server.pause();
    }
    client.on('data', (chunk) => {
      if (!link.silent) server.write(chunk);
    });
    server.on('data', (chunk) => {
      if (link.silent) return;
      const fault = this.replyFault;
      if (fault && (fault.matching?.(chunk) ?? true)) {
        this.replyFault = undefined;
        if (fault.fault === 'drop-and-go-silent') link.silent = true;
        else this.close(link);
        fault.armed();
        return;
      }
      client.write(chunk);
    });
    for (const socket of [client, server]) {
      socket.on('error', () => this.close(link));
      socket.on('close', () => this.close(link));
    }
  }

  private close(link: Link): void {
    if (!this.links.delete(link)) return;
    link.client.destroy();
    link.server.destroy();
  }
}
