import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { JobLogContext } from './job-log-context';
import { MetricsServerModule } from './metrics/metrics.module';
import { QueueErrorLog } from './queue-error-log';

/**
 * Operations for the worker app: `/metrics` on METRICS_PORT, job ids on every log line of a job, and its
 * queues' connection errors in the log.
 */
@Module({
  imports: [DiscoveryModule, MetricsServerModule],
  providers: [JobLogContext, QueueErrorLog],
})
export class WorkerOperationsModule {}
