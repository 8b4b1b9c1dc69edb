// Imported first by main.ts: tracing must hook http, fastify, ioredis, mongodb and undici before any of
// them is loaded. Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
import { startTracing } from '@bufferq/telemetry';

startTracing('bufferq-worker');
