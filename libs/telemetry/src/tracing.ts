import { FastifyOtelInstrumentation } from '@fastify/otel';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { MongoDBInstrumentation } from '@opentelemetry/instrumentation-mongodb';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BullMQOtel } from 'bullmq-otel';
import { z } from 'zod';

/**
 * The tracing settings, the OpenTelemetry SDK's own variables (it reads them itself, e.g.
 * OTEL_EXPORTER_OTLP_HEADERS, OTEL_TRACES_SAMPLER, OTEL_BSP_SCHEDULE_DELAY); listed here so the apps'
 * env schemas validate and document them.
 */
export const telemetryEnv = z.object({
  /** OTLP/HTTP collector (e.g. http://otel-collector:4318); tracing is off while it is unset. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.preprocess((value) => (value === '' ? undefined : value), z.url().optional()),
  /** Service name on the spans; default `bufferq-api` / `bufferq-worker`. */
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
});

let sdk: NodeSDK | undefined;

/**
 * Starts OpenTelemetry tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set: spans of incoming HTTP requests
 * (http, Fastify routes), Redis commands (ioredis), MongoDB commands (bulkWrite included) and outgoing
 * HTTP (undici, which also sends `traceparent`), exported over OTLP/HTTP. Must run before those modules
 * are first required: each app's `main.ts` imports its `tracing.ts` first.
 */
export function startTracing(defaultServiceName: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const settings = telemetryEnv.parse(env);
  if (!settings.OTEL_EXPORTER_OTLP_ENDPOINT || sdk) return Boolean(sdk);
  sdk = new NodeSDK({
    serviceName: settings.OTEL_SERVICE_NAME ?? defaultServiceName,
    traceExporter: new OTLPTraceExporter(),
    // Only what this list names: no metrics or logs exporters (Prometheus and pino serve those).
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      // Requests only (the outgoing requests worth tracing go through undici), and not the scrapes and
      // probes that arrive every few seconds.
      new HttpInstrumentation({
        disableOutgoingRequestInstrumentation: true,
        ignoreIncomingRequestHook: (request) => isScrapeOrProbe(request.url),
      }),
      new FastifyOtelInstrumentation({
        registerOnInitialization: true,
        ignorePaths: (route: { url?: string }) => isScrapeOrProbe(route.url),
      }),
      // Commands of a traced operation only, not every BullMQ poll.
      new IORedisInstrumentation({ requireParentSpan: true }),
      new MongoDBInstrumentation({ requireParentSpan: true }),
      new UndiciInstrumentation({ requireParentforSpans: true }),
    ],
  });
  sdk.start();
  // The exporter batches spans: send what is left when the process ends.
  const stop = () => void sdk?.shutdown().catch(() => undefined);
  process.once('SIGTERM', stop);
  process.once('beforeExit', stop);
  return true;
}

/** `/metrics` and `/health...`: asked every few seconds by Prometheus and orchestrators. */
function isScrapeOrProbe(path: string | undefined): boolean {
  return /^\/(metrics|health)(\/|\?|$)/.test(path ?? '');
}

/**
 * BullMQ's own OpenTelemetry integration for the apps' BullMQ root options (queues and workers registered
 * through @nestjs/bullmq): a job carries its producer's trace context, and its processing is a span
 * linked to it. Undefined while tracing is off, so BullMQ does no tracing work at all.
 */
export function bullmqTelemetry(): BullMQOtel | undefined {
  return sdk ? new BullMQOtel({ tracerName: 'bullmq' }) : undefined;
}
