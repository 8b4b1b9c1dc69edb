import { Writable } from 'node:stream';
import { BullModule, InjectQueue, Processor, WorkerHost } from '@nestjs/bullmq';
import { Injectable, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { Test, TestingModule } from '@nestjs/testing';
import { context, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { Job, Queue } from 'bullmq';
import pino from 'pino';
import { eventually, testServices, uniqueName } from '@bufferq/testing';
import { logContext } from '@bufferq/telemetry';
import { WorkerOperationsModule } from '../src';

const { redisUrl } = testServices();
const QUEUE = uniqueName('log-context');

/** Log lines as the apps write them (pino with the `logContext` mixin), kept as parsed JSON. */
const lines: Array<Record<string, unknown>> = [];
const logger = pino(
  { mixin: logContext },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString('utf8')));
      done();
    },
  }),
);

@Processor(QUEUE)
class LoggingProcessor extends WorkerHost {
  async process(job: Job<{ text: string }>): Promise<void> {
    logger.info(`before ${job.data.text}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
    logger.info(`after ${job.data.text}`);
  }
}

@Injectable()
class Producer {
  constructor(@InjectQueue(QUEUE) readonly queue: Queue) {}
}

@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      load: [() => ({ METRICS_PORT: 0, METRICS_HOST: '127.0.0.1' })],
    }),
    BullModule.forRoot({ connection: { url: redisUrl } }),
    BullModule.registerQueue({ name: QUEUE }),
    WorkerOperationsModule,
  ],
  providers: [LoggingProcessor, Producer],
})
class LoggingWorker {}

describe('job log context', () => {
  let app: TestingModule;

  beforeAll(async () => {
    app = await Test.createTestingModule({ imports: [LoggingWorker] }).compile();
    await app.init();
  });

  afterAll(async () => {
    await app.get(Producer).queue.obliterate({ force: true });
    await app.close();
  });

  it('gives every log line written while a job runs its job id and queue, also after an await', async () => {
    const job = await app.get(Producer).queue.add('log', { text: 'one' });
    expect(await eventually(() => lines.some((line) => line.msg === 'after one'), 10_000)).toBe(true);
    for (const msg of ['before one', 'after one'])
      expect(lines.find((line) => line.msg === msg)).toMatchObject({ jobId: job.id, queue: QUEUE });
    logger.info('outside any job');
    expect(lines.find((line) => line.msg === 'outside any job')).not.toHaveProperty('jobId');
  });

  it('gives a log line written inside a traced operation its trace and span ids', () => {
    const manager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(manager);
    try {
      const span = {
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        traceFlags: TraceFlags.SAMPLED,
      };
      context.with(trace.setSpan(ROOT_CONTEXT, trace.wrapSpanContext(span)), () => logger.info('traced'));
      expect(lines.find((line) => line.msg === 'traced')).toMatchObject({
        trace_id: span.traceId,
        span_id: span.spanId,
      });
    } finally {
      context.disable();
    }
  });
});
