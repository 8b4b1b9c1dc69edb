/**
 * The system a chaos run exercises, on this machine: a private Redis (AOF, fsync always) and MongoDB-wire
 * server, the fault proxy in front of Redis, and the producer and worker processes. Workers are kept
 * running: whatever ends one (a planned SIGKILL, a failed boot) starts it again until `stopWorkers`.
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { FaultProxy, LocalServer, startPrivateMongo, startPrivateRedis } from '@bufferq/testing';
import { ChaosChild } from './child-process';
import { mergeLedgers, LedgerData } from './ledger';
import { SeededRandom } from './random';
import { ProducerConfig, WorkerConfig } from './topology';

const WORKER_RESTART_DELAY_MS = 300;
/** Producers wait up to 15 s for their in-flight updates before they answer `stop`. */
const PRODUCER_STOP_TIMEOUT_MS = 60_000;

export interface ChaosSystemSettings {
  producers: number;
  workers: number;
  documents: number;
  updatesPerSecond: number;
  maxInFlight: number;
  dbName: string;
  logDir: string;
}

export class ChaosSystem {
  redis!: LocalServer;
  mongo!: LocalServer;
  proxy!: FaultProxy;
  workers: ChaosChild[] = [];
  producers: ChaosChild[] = [];
  /** Workers that exited without being killed on purpose (e.g. booting while Redis was down). */
  workerBootFailures = 0;
  private keepWorkersRunning = true;
  private readonly closers: Array<() => Promise<unknown>> = [];

  constructor(
    private readonly settings: ChaosSystemSettings,
    private readonly random: SeededRandom,
  ) {}

  /** Servers first, then every producer and worker; resolves once all of them said `ready`. */
  async start(): Promise<void> {
    const { settings } = this;
    // Redis acknowledges a write only once it is fsynced: a restart cannot lose what a producer saw acknowledged.
    this.redis = await startPrivateRedis({ appendOnly: true, appendFsync: 'always' });
    this.closers.push(() => this.redis.remove());
    this.mongo = await startPrivateMongo();
    this.closers.push(() => this.mongo.remove());
    this.proxy = await new FaultProxy(this.redis.port).start();
    this.closers.unshift(() => this.proxy.stop());

    this.workers = Array.from({ length: settings.workers }, (_, index) => {
      const config: WorkerConfig = {
        index,
        redisUrl: this.proxy.url,
        mongoUrl: this.mongo.url,
        dbName: settings.dbName,
      };
      return new ChaosChild(
        `worker ${index}`,
        'worker.ts',
        config,
        join(settings.logDir, `worker-${index}.log`),
        (worker, _code, signal) => this.restartWorker(worker, signal),
      );
    });
    this.producers = Array.from({ length: settings.producers }, (_, index) => {
      const config: ProducerConfig = {
        index,
        seed: this.random.derive(index).seed,
        redisUrl: this.proxy.url,
        mongoUrl: this.mongo.url,
        dbName: settings.dbName,
        documents: settings.documents,
        updatesPerSecond: settings.updatesPerSecond,
        maxInFlight: settings.maxInFlight,
      };
      return new ChaosChild(`producer ${index}`, 'producer.ts', config, join(settings.logDir, `producer-${index}.log`));
    });
    const children = [...this.workers, ...this.producers];
    this.closers.unshift(() => Promise.allSettled(children.map((child) => child.kill())));
    await Promise.all(children.map((child) => child.start()));
  }

  /** Stops every producer and returns their ledgers merged. */
  async stopProducers(): Promise<LedgerData> {
    const replies = await Promise.all(
      this.producers.map((producer) => producer.request({ type: 'stop' }, 'ledger', PRODUCER_STOP_TIMEOUT_MS)),
    );
    return mergeLedgers(replies.map((reply) => reply.ledger));
  }

  async stopWorkers(): Promise<void> {
    this.keepWorkersRunning = false;
    await Promise.all(this.workers.map((worker) => worker.stop()));
  }

  /** A Redis client that bypasses the proxy, for the orchestrator's own reads. */
  directRedis(): Redis {
    const client = new Redis(this.redis.url);
    this.closers.unshift(() => client.quit());
    return client;
  }

  directMongo(): MongoClient {
    const client = new MongoClient(this.mongo.url);
    this.closers.unshift(() => client.close());
    return client;
  }

  /** Everything stops and the servers' data is removed; safe to call more than once, and after a failed start. */
  async tearDown(): Promise<void> {
    this.keepWorkersRunning = false;
    for (const close of this.closers.splice(0)) await close().catch(() => undefined);
  }

  private restartWorker(worker: ChaosChild, signal: NodeJS.Signals | null): void {
    if (!this.keepWorkersRunning) return;
    if (signal !== 'SIGKILL') this.workerBootFailures += 1;
    setTimeout(() => {
      // A boot that fails exits, which brings it back here.
      if (this.keepWorkersRunning && !worker.alive) worker.start().catch(() => undefined);
    }, WORKER_RESTART_DELAY_MS);
  }
}
