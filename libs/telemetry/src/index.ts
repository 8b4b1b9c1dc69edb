// Loaded first by the apps' bootstraps (before the modules tracing instruments): keep it free of imports
// of ioredis, mongodb, undici, fastify and bullmq.
export { startTracing, bullmqTelemetry, telemetryEnv } from './tracing';
export { runInJobContext, logContext } from './log-context';
export { inSpan } from './spans';
export type { JobLogFields } from './log-context';
