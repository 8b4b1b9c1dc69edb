import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { WorkerModule } from './worker.module';

async function bootstrap(): Promise<void> {
  // The worker serves no HTTP: an application context runs the BullMQ processors.
  const app = await NestFactory.createApplicationContext(WorkerModule, { bufferLogs: true });
  app.useLogger(app.get(Logger));
  // SIGTERM: BullMQ workers finish their active job (a flush completes) before the process exits.
  app.enableShutdownHooks();
}

void bootstrap();
