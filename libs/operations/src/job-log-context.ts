import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ProcessorDecoratorService } from '@nestjs/bullmq';
import type { Processor } from 'bullmq';
import { runInJobContext } from '@bufferq/telemetry';

/**
 * Runs every job of the app's @nestjs/bullmq processors in its job context, so each log line written
 * while it runs carries the job id and queue (and, with tracing on, the trace id: see `logContext`).
 * It extends @nestjs/bullmq's ProcessorDecoratorService, the hook that library gives for wrapping
 * processors, before the processors' workers are created (they are created at module init, after every
 * provider is constructed).
 */
@Injectable()
export class JobLogContext {
  constructor(moduleRef: ModuleRef) {
    const decorator = moduleRef.get(ProcessorDecoratorService, { strict: false });
    const decorate = decorator.decorate.bind(decorator);
    decorator.decorate = (processor: Processor): Processor => {
      const decorated = decorate(processor);
      return (job, token, signal) =>
        runInJobContext({ jobId: job.id, queue: job.queueName }, () => decorated(job, token, signal));
    };
  }
}
