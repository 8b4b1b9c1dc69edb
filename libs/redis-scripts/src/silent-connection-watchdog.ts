import type { Cluster, Redis } from 'ioredis';
import { isCluster } from './redis-script';

/**
 * Checks per timeout. A connection gone silent is found at most half a timeout late: the next probe goes
 * out up to a check later, and the check that finds it unanswered for the whole timeout up to one later.
 */
const PROBES_PER_TIMEOUT = 4;

interface Watch {
  timeoutMs: number;
  onReconnect: (unansweredForMs: number) => void;
}

/** One watchdog per client, however many buffers or modules watch it (one PING, one timer). */
const watchdogs = new WeakMap<Redis, SilentConnectionWatchdog>();

/**
 * Reconnects a client whose connection looks open but answers nothing: its peer vanished without a reset
 * (a host gone, a NAT or firewall that dropped the flow), so the client never sees an error and every
 * call on it would wait for ever. A `PING` goes out every quarter of the timeout; one unanswered for the
 * whole timeout makes the client reconnect, and ioredis sends every unanswered call again on the new
 * connection. A timeout on the calls themselves could not answer their callers: a call may have run, or
 * may still run once the stalled bytes move. Re-sent, each call gets the answer of its one run: the buffer
 * script runs each call number once, and the client's other calls (reads, rate-limit reservations) are
 * safe to repeat. If Redis does not answer on the new connection either, the client's own retry limit
 * (`maxRetriesPerRequest`) ends the calls with an error.
 *
 * It watches the whole client, whoever's calls are on it; with several watches on one client the shortest
 * timeout applies. A Cluster client is watched node by node (every node connection it has or opens later):
 * a silent node's connection is closed, and the Cluster client re-reads the slot map, connects again and
 * sends the calls it had not heard back on (ioredis retries a call whose node connection closed).
 */
export class SilentConnectionWatchdog {
  private readonly watches = new Set<Watch>();
  private timer?: NodeJS.Timeout;
  private timeoutMs = Infinity;
  /** When the probe in flight was sent; undefined when none is. */
  private probeSentAt?: number;
  /** Tells a probe answered after a reconnect (it was re-sent) from the current one. */
  private probes = 0;
  /** Calls in flight that may hold the connection's replies, each with how long (see `whileBlocking`). */
  private readonly blocking = new Set<{ blockMs: number }>();

  private constructor(private readonly redis: Redis) {}

  /**
   * Watches `redis` until the returned function is called; `onReconnect` is told each time the client was
   * made to reconnect, with how long the probe had gone unanswered.
   */
  static watch(redis: Redis | Cluster, timeoutMs: number, onReconnect: Watch['onReconnect']): () => void {
    if (isCluster(redis)) return SilentConnectionWatchdog.watchNodes(redis, timeoutMs, onReconnect);
    return SilentConnectionWatchdog.watchServer(redis, timeoutMs, onReconnect);
  }

  /**
   * Runs `call`, a command that may hold the connection's replies up to `blockMs` (a `WAIT` or `WAITAOF`
   * with that timeout): a `PING` sent meanwhile is answered only after it, so while it runs the watchdog
   * waits `blockMs` longer before it calls the connection silent, and a probe's clock starts again once it
   * returned. Without it, a reply timeout shorter than the wait would reconnect during every slow wait.
   * `redis` is the connection the call runs on (on a Cluster, the node's).
   */
  static async whileBlocking<T>(redis: Redis, blockMs: number, call: () => Promise<T>): Promise<T> {
    const watchdog = watchdogs.get(redis);
    if (watchdog === undefined) return call();
    const block = { blockMs };
    watchdog.blocking.add(block);
    try {
      return await call();
    } finally {
      watchdog.blocking.delete(block);
      if (watchdog.probeSentAt !== undefined) watchdog.probeSentAt = Date.now();
    }
  }

  private static watchNodes(cluster: Cluster, timeoutMs: number, onReconnect: Watch['onReconnect']): () => void {
    const nodes = clusterNodeWatches.get(cluster) ?? new ClusterNodeWatches(cluster);
    clusterNodeWatches.set(cluster, nodes);
    const watch = { timeoutMs, onReconnect };
    nodes.add(watch);
    return () => {
      if (nodes.remove(watch) && clusterNodeWatches.get(cluster) === nodes) clusterNodeWatches.delete(cluster);
    };
  }

  private static watchServer(redis: Redis, timeoutMs: number, onReconnect: Watch['onReconnect']): () => void {
    const watchdog = watchdogs.get(redis) ?? new SilentConnectionWatchdog(redis);
    watchdogs.set(redis, watchdog);
    const watch = { timeoutMs, onReconnect };
    watchdog.watches.add(watch);
    watchdog.restart();
    return () => {
      if (!watchdog.watches.delete(watch)) return;
      if (watchdog.watches.size === 0 && watchdogs.get(redis) === watchdog) watchdogs.delete(redis);
      watchdog.restart();
    };
  }

  private restart(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.watches.size === 0) return;
    this.timeoutMs = Math.min(...[...this.watches].map((watch) => watch.timeoutMs));
    this.timer = setInterval(() => this.check(), Math.max(10, this.timeoutMs / PROBES_PER_TIMEOUT));
    this.timer.unref();
  }

  private check(): void {
    if (this.redis.status !== 'ready') {
      this.probeSentAt = undefined;
      return;
    }
    const now = Date.now();
    if (this.probeSentAt === undefined) {
      const probe = ++this.probes;
      this.probeSentAt = now;
      const answered = () => {
        if (probe === this.probes) this.probeSentAt = undefined;
      };
      this.redis.ping().then(answered, answered);
      return;
    }
    const unansweredForMs = now - this.probeSentAt;
    let allowanceMs = 0;
    for (const { blockMs } of this.blocking) allowanceMs = Math.max(allowanceMs, blockMs);
    if (unansweredForMs < this.timeoutMs + allowanceMs) return;
    this.probeSentAt = undefined;
    this.probes++;
    for (const watch of this.watches) watch.onReconnect(unansweredForMs);
    this.redis.disconnect(true);
  }
}

/**
 * The watches of one Cluster client, applied to each of its node connections (a watchdog per node, see
 * SilentConnectionWatchdog.watch): one `+node` listener on the client and one `end` listener per node,
 * however many buffers and modules watch it, all removed with the last watch.
 */
class ClusterNodeWatches {
  private readonly watches = new Set<Watch>();
  /** Per node: its `end` listener, and the stop of each watch on it. */
  private readonly nodes = new Map<Redis, { ended: () => void; stops: Map<Watch, () => void> }>();
  private readonly nodeAdded = (node: Redis) => this.watchNode(node);

  constructor(private readonly cluster: Cluster) {
    for (const node of cluster.nodes('all')) this.watchNode(node);
    cluster.on('+node', this.nodeAdded);
  }

  add(watch: Watch): void {
    this.watches.add(watch);
    for (const [node, { stops }] of this.nodes) stops.set(watch, watchServer(node, watch));
  }

  /** Ends `watch` on every node; true when it was the last one (the listeners are gone). */
  remove(watch: Watch): boolean {
    if (!this.watches.delete(watch)) return false;
    for (const { stops } of this.nodes.values()) {
      stops.get(watch)?.();
      stops.delete(watch);
    }
    if (this.watches.size > 0) return false;
    this.cluster.off('+node', this.nodeAdded);
    for (const [node, { ended }] of this.nodes) node.off('end', ended);
    this.nodes.clear();
    return true;
  }

  private watchNode(node: Redis): void {
    if (this.nodes.has(node)) return;
    const stops = new Map<Watch, () => void>();
    for (const watch of this.watches) stops.set(watch, watchServer(node, watch));
    // A node connection ends for good once closed (the Cluster client opens a new one): no watch left behind.
    const ended = () => {
      for (const stop of stops.values()) stop();
      this.nodes.delete(node);
    };
    node.once('end', ended);
    this.nodes.set(node, { ended, stops });
  }
}

const clusterNodeWatches = new WeakMap<Cluster, ClusterNodeWatches>();
const watchServer = (node: Redis, watch: Watch) =>
  SilentConnectionWatchdog.watch(node, watch.timeoutMs, watch.onReconnect);
