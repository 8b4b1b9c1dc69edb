import { Module } from '@nestjs/common';
import { JobLogContext } from './job-log-context';
import { MetricsServerModule } from './metrics/metrics.module';

/** Operations for the worker app: `/metrics` on METRICS_PORT and job ids on every log line of a job. */
@Module({
  imports: [MetricsServerModule],
  providers: [JobLogContext],
})
export class WorkerOperationsModule {}
