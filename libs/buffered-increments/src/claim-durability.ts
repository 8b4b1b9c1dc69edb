import type { Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { ClaimNotDurableError } from './errors';
import { isCluster, type RedisLike, SilentConnectionWatchdog } from '@bufferq/redis-scripts';

export interface ClaimDurabilityOptions {
  /**
   * Wait until the claim is fsynced to the Redis server's append-only file (`WAITAOF`, Redis >= 7.2 and
   * Valkey) before writing to MongoDB. `auto` (default): when the server has AOF on and knows WAITAOF.
   */
  waitForAof: 'auto' | boolean;
  /** Replicas that must have the claim (`WAIT` / `WAITAOF`) before MongoDB is written. Default 0. */
  waitForReplicas: number;
  /** How long to wait; a claim not durable by then fails the flush (the batch stays claimed). Default 5 s. */
  timeoutMs: number;
}

/**
 * Makes sure a claimed batch cannot come back from Redis after it was written to MongoDB: a Redis
 * restarted from an AOF that lacks the claim, or a promoted replica that never saw it, would hand the
 * same fields out again as a new batch. The wait runs on the connection that made the claim, so it
 * covers it (WAIT and WAITAOF count that client's own writes); a watchdog on that connection is told it may
 * hold replies that long (`SilentConnectionWatchdog.whileBlocking`).
 */
export class ClaimDurability {
  private aof?: Promise<boolean>;

  constructor(
    private readonly redis: RedisLike,
    private readonly options: ClaimDurabilityOptions,
  ) {}

  /** Learns what the server can do; called at start so the first flush does not pay for it. */
  prepare(): Promise<boolean> {
    if (this.aof) return this.aof;
    if (this.options.waitForAof !== 'auto') return (this.aof = Promise.resolve(this.options.waitForAof));
    this.aof = this.serverWaitsForAof().catch((error) => {
      this.aof = undefined;
      throw error;
    });
    return this.aof;
  }

  /**
   * The connection a claim on `key` just ran on. Call it right after the claim's reply: WAIT and
   * WAITAOF only cover writes made on the connection they are sent on.
   */
  connectionOf(key: string): unknown {
    return serverOf(this.redis, key).stream;
  }

  /**
   * Resolves once the claim on `key`'s server is as durable as configured; throws if it is not, also
   * when the client reconnected since the claim (a WAIT on a connection that wrote nothing returns at
   * once on some servers, whatever the replicas hold).
   */
  async confirm(key: string, claimConnection: unknown): Promise<void> {
    const aof = await this.prepare();
    const replicas = this.options.waitForReplicas;
    if (!aof && replicas <= 0) return;
    const server = serverOf(this.redis, key);
    const sameConnection = () => {
      if (server.stream !== claimConnection)
        throw new ClaimNotDurableError('the connection that made the claim was lost before Redis confirmed it durable');
    };
    sameConnection();
    if (aof) {
      const [local, copies] = (await SilentConnectionWatchdog.whileBlocking(server, this.options.timeoutMs, () =>
        server.call('WAITAOF', 1, replicas, this.options.timeoutMs),
      )) as [number, number];
      sameConnection();
      if (local < 1 || copies < replicas) {
        throw new ClaimNotDurableError(
          `the claim reached ${local ? 'the' : 'no'} local AOF and ${copies} of ${replicas} replica AOFs within ${this.options.timeoutMs} ms`,
        );
      }
      return;
    }
    const copies = Number(
      await SilentConnectionWatchdog.whileBlocking(server, this.options.timeoutMs, () =>
        server.call('WAIT', replicas, this.options.timeoutMs),
      ),
    );
    sameConnection();
    if (copies < replicas)
      throw new ClaimNotDurableError(
        `the claim reached ${copies} of ${replicas} replicas within ${this.options.timeoutMs} ms`,
      );
  }

  private async serverWaitsForAof(): Promise<boolean> {
    const server = serverOf(this.redis, '');
    const persistence = String(await server.info('persistence'));
    if (!/aof_enabled:1/.test(persistence)) return false;
    const described = (await server.call('COMMAND', 'INFO', 'WAITAOF')) as unknown[];
    return Array.isArray(described) && described[0] != null;
  }
}

/** The connection that serves `key`: the client itself, or on a Cluster the master of the key's slot. */
function serverOf(redis: RedisLike, key: string): Redis {
  if (!isCluster(redis)) return redis;
  // ioredis keeps one connection per node; its slot table names the master serving a slot.
  const cluster = redis as unknown as {
    slots: string[][];
    connectionPool: { getInstanceByKey(key: string): Redis | undefined };
  };
  const master = cluster.slots[calculateSlot(key)]?.[0];
  const connection = master ? cluster.connectionPool.getInstanceByKey(master) : undefined;
  if (!connection)
    throw new ClaimNotDurableError('the Redis Cluster slot table does not know the master of this buffer yet');
  return connection;
}
