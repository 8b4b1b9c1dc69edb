import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';

/** A client the buffer works with: a single Redis or a Redis Cluster (all keys share one hash slot). */
export type RedisLike = Redis | Cluster;

/**
 * A Lua script from `scripts/<name>.lua`, run with EVALSHA and loaded on first use (NOSCRIPT), so the
 * source travels over the wire once per server, not on every call.
 */
export class RedisScript {
  private readonly source: string;
  private readonly sha: string;

  constructor(private readonly name: string) {
    this.source = readFileSync(join(__dirname, 'scripts', `${name}.lua`), 'utf8');
    this.sha = createHash('sha1').update(this.source).digest('hex');
  }

  /** Loads the script into the server (every master of a Cluster) ahead of its first use. */
  async load(redis: RedisLike): Promise<void> {
    const servers = 'isCluster' in redis && redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
    await Promise.all(servers.map((server) => server.script('LOAD', this.source)));
  }

  async run<T>(redis: RedisLike, keys: string[], args: Array<string | number>): Promise<T> {
    try {
      return (await redis.evalsha(this.sha, keys.length, ...keys, ...args)) as T;
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return (await redis.eval(this.source, keys.length, ...keys, ...args)) as T;
    }
  }
}
