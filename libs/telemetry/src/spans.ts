import { context, SpanStatusCode, trace } from '@opentelemetry/api';

const tracer = trace.getTracer('bufferq');

/**
 * Runs `work` inside a span of our own code (a no-op while tracing is off): spans and trace context the
 * libraries create meanwhile (a BullMQ job added, a Redis command) become its children. `startTime`
 * (ms) backdates it, for work whose start is known only once it proved worth tracing.
 */
export async function inSpan<T>(
  name: string,
  options: { startTime?: number; attributes?: Record<string, string | number> },
  work: () => Promise<T>,
): Promise<T> {
  const span = tracer.startSpan(name, { startTime: options.startTime, attributes: options.attributes });
  try {
    return await context.with(trace.setSpan(context.active(), span), work);
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    throw error;
  } finally {
    span.end();
  }
}
