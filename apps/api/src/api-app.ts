import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { validatedEnv } from '@bufferq/config';
import { mountOpenApiDocs, operationsEnv, requestIdOf } from '@bufferq/operations';
import { serveIncrementRoute } from '@bufferq/counters';
import { AppModule } from './app.module';

// The adapter exists before the config module does, so its one setting is read here, by the same schema.
const trustProxyOf = validatedEnv(operationsEnv.pick({ TRUST_PROXY: true }));

/**
 * Builds the api application exactly as production runs it; `main.ts` listens on it and the e2e tests
 * drive it in-process, so both see the same adapters, pipes and hooks.
 */
export async function createApiApp(): Promise<NestFastifyApplication> {
  const { TRUST_PROXY: trustProxy } = trustProxyOf(process.env);
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule,
    new FastifyAdapter({
      bodyLimit: 1024 * 1024,
      trustProxy,
      routerOptions: { maxParamLength: 4096 },
      genReqId: requestIdOf,
    }),
    // A failed boot throws (main exits non-zero; a test fails) instead of calling process.exit.
    { bufferLogs: true, abortOnError: false },
  );
  app.useLogger(app.get(Logger));
  // The ingest hot path skips NestJS's per-request pipeline (same guards, validation and error shapes).
  serveIncrementRoute(app);
  // SIGTERM: stop accepting, finish in-flight requests, run module shutdown hooks, exit.
  app.enableShutdownHooks();
  mountOpenApiDocs(app);
  try {
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
  } catch (error) {
    // A refused boot (bad config) must not leave the datastore connections open.
    await app.close().catch(() => undefined);
    throw error;
  }
  return app;
}
