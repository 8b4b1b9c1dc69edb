import { AsyncLocalStorage } from 'node:async_hooks';
import { trace } from '@opentelemetry/api';

/** The job a piece of work runs for. */
export interface JobLogFields {
  jobId?: string;
  queue: string;
}

const currentJob = new AsyncLocalStorage<JobLogFields>();

/** Runs `work` (and all it awaits) as part of a job: log lines written meanwhile carry its id and queue. */
export function runInJobContext<T>(job: JobLogFields, work: () => T): T {
  return currentJob.run(job, work);
}

/**
 * Fields every log line gets (a pino `mixin`): the job running (id, queue) and the active trace and span
 * ids, so a log line leads to its trace and to the job on the queue dashboard.
 */
export function logContext(): Record<string, string> {
  const fields: Record<string, string> = {};
  const job = currentJob.getStore();
  if (job) {
    fields.queue = job.queue;
    if (job.jobId !== undefined) fields.jobId = job.jobId;
  }
  const span = trace.getActiveSpan()?.spanContext();
  if (span && span.traceFlags !== undefined && /[1-9a-f]/.test(span.traceId)) {
    fields.trace_id = span.traceId;
    fields.span_id = span.spanId;
  }
  return fields;
}
