import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { WorkerModule } from './worker.module';

/** Builds the worker exactly as production runs it; `main.ts` and the tests both use this. */
export async function createWorkerApp(): Promise<INestApplicationContext> {
  // The worker serves no HTTP: an application context runs the BullMQ processors.
  const app = await NestFactory.createApplicationContext(WorkerModule, {
    bufferLogs: true,
    abortOnError: false,
  });
  app.useLogger(app.get(Logger));
  // SIGTERM: BullMQ workers finish their active job (a flush completes) before the process exits.
  app.enableShutdownHooks();
  return app;
}
