/**
 * A worker process of a chaos run (forked by chaos-run.ts, config as JSON in argv[2]): a minimal NestJS
 * application context with the library's own flush processor and job schedulers, as a deployment's
 * worker runs them. Both its buffer connection and its BullMQ connections go through the fault proxy.
 * The orchestrator SIGKILLs it at random; SIGTERM (at the end of a run) closes it cleanly.
 */
import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BufferedIncrementsModule } from '@bufferq/buffered-increments';
import { bullmqConnection } from '@bufferq/datastores';
import { ChildMessage, FLUSH_LOCK_MS, WORKER_COLLECTIONS, WorkerConfig } from './topology';

const config = JSON.parse(process.argv[2]) as WorkerConfig;

@Module({
  imports: [
    BullModule.forRoot({ connection: bullmqConnection(config.redisUrl) }),
    BufferedIncrementsModule.forRoot({
      redis: config.redisUrl,
      mongo: { url: config.mongoUrl, dbName: config.dbName },
    }),
    BufferedIncrementsModule.forWorker(WORKER_COLLECTIONS, { flushJobLockMs: FLUSH_LOCK_MS }),
  ],
})
class ChaosWorkerModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(ChaosWorkerModule, {
    abortOnError: false,
    logger: ['error', 'warn'],
  });
  process.once('SIGTERM', () => {
    void app.close().finally(() => process.exit(0));
  });
  process.send!({ type: 'ready' } satisfies ChildMessage);
}

// An orphan worker would keep flushing into the next run's servers' ports: leave with the orchestrator.
process.on('disconnect', () => process.exit(1));
main().catch((error) => {
  // Booting while Redis or MongoDB is down fails; the orchestrator starts the worker again.
  console.error(`worker ${config.index} failed to start:`, error instanceof Error ? error.message : error);
  process.exit(1);
});
