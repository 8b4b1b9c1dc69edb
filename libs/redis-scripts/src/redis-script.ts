import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Command } from 'ioredis';
import type { Cluster, Redis } from 'ioredis';

/** A client scripts run on: a single Redis or a Redis Cluster (all of one call's keys share a hash slot). */
export type RedisLike = Redis | Cluster;

/** Values a script's preamble defines as Lua locals, so a rule shared with TypeScript is written once. */
export type ScriptConstants = Record<string, string | number>;

const FILE_NAME = /^([a-z]+(?:-[a-z]+)*)-(\d+)\.lua$/;

/**
 * One Lua script, read from a file named `<what-it-does>-<number of keys>.lua` (BullMQ's convention),
 * run with EVALSHA and sent in full only when the server answers NOSCRIPT, so the source travels once
 * per server. The key count in the name is checked on every call: a script is given exactly its keys.
 *
 * `constants` become `local NAME = value` lines ahead of the source, so a value both sides must agree
 * on (a bookkeeping field's name, an arithmetic base) is defined once, in TypeScript.
 */
export class RedisScript {
  readonly name: string;
  readonly numberOfKeys: number;
  readonly source: string;
  private readonly sha: string;

  constructor(path: string, constants: ScriptConstants = {}) {
    const match = FILE_NAME.exec(basename(path));
    if (!match) throw new Error(`Lua script file ${basename(path)} is not named <what-it-does>-<key count>.lua`);
    this.name = match[1];
    this.numberOfKeys = Number(match[2]);
    this.source = preamble(constants) + readFileSync(path, 'utf8');
    this.sha = createHash('sha1').update(this.source).digest('hex');
  }

  /** Loads the script into the server (every master of a Cluster) ahead of its first use. */
  async load(redis: RedisLike): Promise<void> {
    const servers = isCluster(redis) ? redis.nodes('master') : [redis];
    await Promise.all(servers.map((server) => server.script('LOAD', this.source)));
  }

  /**
   * Runs the script on the server that holds `keys`. `direct` writes the call to that server at once, past
   * the client's auto-pipelining: an auto-pipelining client keeps one pipeline in flight per server and
   * holds later commands until it is answered, which would serialize calls a caller gathers and sends
   * itself so that the server runs one while the caller prepares the next.
   */
  async run<T>(
    redis: RedisLike,
    keys: readonly string[],
    args: ReadonlyArray<string | number | Buffer>,
    options: { direct?: boolean } = {},
  ): Promise<T> {
    if (keys.length !== this.numberOfKeys) {
      throw new Error(`Lua script ${this.name} takes ${this.numberOfKeys} keys, was given ${keys.length}`);
    }
    const send = (name: 'evalsha' | 'eval', first: string) => {
      const all = [first, keys.length, ...keys, ...args];
      if (!options.direct) return redis[name](...(all as [string, number])) as Promise<T>;
      const command = new Command(name, all, { keyPrefix: redis.options.keyPrefix, replyEncoding: 'utf8' });
      void redis.sendCommand(command);
      return command.promise as Promise<T>;
    };
    try {
      return await send('evalsha', this.sha);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return await send('eval', this.source);
    }
  }
}

/** Whether the client is an ioredis Cluster (it routes each command to the node serving its slot). */
export function isCluster(redis: RedisLike): redis is Cluster {
  return 'isCluster' in redis && redis.isCluster === true;
}

function preamble(constants: ScriptConstants): string {
  return Object.entries(constants)
    .map(([name, value]) => {
      if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new Error(`Lua constant ${name} is not UPPER_SNAKE_CASE`);
      return `local ${name} = ${typeof value === 'number' ? String(value) : JSON.stringify(value)}\n`;
    })
    .join('');
}
