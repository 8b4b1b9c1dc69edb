import { Injectable } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import {
  BufferedMongoIncrements,
  DeadLetter,
  FlushReport,
  bufferedIncrementsToken,
} from '@bufferq/buffered-increments';

/** What `stats` shows of one buffer. */
export interface BufferSummary {
  /** The buffer's name in the module: its collection, or its namespace when several share a collection. */
  buffer: string;
  collection: string;
  bufferedFields: number;
  oldestPendingAgeMs: number;
  deadLetters: number;
}

/** A command named a buffer the system does not have. */
export class UnknownBufferError extends Error {
  override readonly name = 'UnknownBufferError';
}

const TOKEN_PREFIX = bufferedIncrementsToken('');

/**
 * An operator's handle on the system's buffers: the producers its modules registered
 * (`BufferedIncrementsModule.forFeature`), found among the application's providers, so every buffered
 * collection the app wires is here under the name its producers are injected by.
 */
@Injectable()
export class BufferAdmin {
  constructor(private readonly discovery: DiscoveryService) {}

  /** The buffers, by name, sorted. */
  buffers(): Map<string, BufferedMongoIncrements> {
    const found = new Map<string, BufferedMongoIncrements>();
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.isDependencyTreeStatic() ? wrapper.instance : undefined;
      if (instance instanceof BufferedMongoIncrements && typeof wrapper.token === 'string')
        found.set(
          wrapper.token.startsWith(TOKEN_PREFIX) ? wrapper.token.slice(TOKEN_PREFIX.length) : wrapper.token,
          instance,
        );
    }
    return new Map([...found].sort(([a], [b]) => a.localeCompare(b)));
  }

  async stats(): Promise<BufferSummary[]> {
    return Promise.all(
      [...this.buffers()].map(async ([buffer, increments]) => {
        const [stats, deadLetters] = await Promise.all([increments.stats(), increments.deadLetterCount()]);
        return { buffer, collection: increments.collection.collectionName, ...stats, deadLetters };
      }),
    );
  }

  /** One flush of the buffer now, in this process; it waits for a worker's flush in progress (the buffer's lock). */
  flush(buffer: string): Promise<FlushReport> {
    return this.get(buffer).flush();
  }

  deadLetters(buffer: string, limit: number): Promise<DeadLetter[]> {
    return this.get(buffer).deadLetters(limit);
  }

  replayDeadLetters(buffer: string, limit: number): Promise<number> {
    return this.get(buffer).replayDeadLetters(limit);
  }

  /** Drops every dead letter of the buffer; returns how many there were. */
  async dropDeadLetters(buffer: string): Promise<number> {
    const increments = this.get(buffer);
    const count = await increments.deadLetterCount();
    await increments.dropDeadLetters();
    return count;
  }

  private get(buffer: string): BufferedMongoIncrements {
    const buffers = this.buffers();
    const increments = buffers.get(buffer);
    if (!increments) {
      const known = [...buffers.keys()];
      throw new UnknownBufferError(
        `no buffered collection named '${buffer}' (known: ${known.length ? known.join(', ') : 'none'})`,
      );
    }
    return increments;
  }
}
