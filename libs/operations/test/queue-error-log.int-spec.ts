import { BullModule, InjectQueue } from '@nestjs/bullmq';
import { Injectable, LoggerService, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { Test, TestingModule } from '@nestjs/testing';
import { Queue } from 'bullmq';
import { eventually, LocalServer, sleep, startPrivateRedis, uniqueName } from '@bufferq/testing';
import { WorkerOperationsModule } from '../src';

const QUEUE = uniqueName('errors');

@Injectable()
class Producer {
  constructor(@InjectQueue(QUEUE) readonly queue: Queue) {}
}

/** What the app logged at warn, as the apps' pino logger would get it. */
const warnings: string[] = [];
const logger: LoggerService = {
  log: () => undefined,
  error: () => undefined,
  warn: (message: string) => warnings.push(String(message)),
};

describe("queues' connection errors", () => {
  let redis: LocalServer;
  let app: TestingModule;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    @Module({
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: true,
          load: [() => ({ METRICS_PORT: 0, METRICS_HOST: '127.0.0.1' })],
        }),
        // Reconnecting every 50 ms: a queue meets many errors while Redis is away.
        BullModule.forRoot({ connection: { url: redis.url, retryStrategy: () => 50 } }),
        BullModule.registerQueue({ name: QUEUE }),
        WorkerOperationsModule,
      ],
      providers: [Producer],
    })
    class QueueingApp {}
    app = await Test.createTestingModule({ imports: [QueueingApp] }).compile();
    app.useLogger(logger);
    await app.init();
    await app.get(Producer).queue.add('warm', {});
  });

  afterAll(async () => {
    await app?.close();
    await redis?.remove();
  });

  it('go to the log, one warning per queue per 10 s, never to console.error', async () => {
    const consoleErrors = jest.spyOn(console, 'error');
    try {
      await redis.kill();
      await sleep(1_500);
      expect(consoleErrors).not.toHaveBeenCalled();
      expect(await eventually(() => warnings.length > 0, 2_000)).toBe(true);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(new RegExp(`^queue ${QUEUE}: .*ECONNREFUSED`));
    } finally {
      consoleErrors.mockRestore();
    }
  });
});
