import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CapabilityMetrics } from './capability-metrics';

/** Fastify hooks on every request: the request id echoed as `x-request-id`, and the latency histogram. */
@Injectable()
export class HttpHooks extends CapabilityMetrics implements OnModuleInit {
  private readonly duration = this.histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });

  constructor(private readonly adapterHost: HttpAdapterHost) {
    super();
  }

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify?.addHook) return;
    fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      reply.header('x-request-id', request.id);
    });
    fastify.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
      // The route pattern, not the URL, keeps the label set small (keys never become labels).
      const route = request.routeOptions?.url ?? 'unmatched';
      this.duration.observe(
        { method: request.method, route, status_code: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
    });
  }
}
