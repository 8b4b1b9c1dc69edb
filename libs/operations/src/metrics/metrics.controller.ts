import { Controller, Get, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { PublicEndpoint } from '../access/public-endpoint.decorator';
import { MetricsCollector } from './metrics-collector';

/** Prometheus text format: every capability's metrics, plus HTTP, health, queue and process metrics. */
@ApiExcludeController()
@PublicEndpoint()
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsCollector) {}

  @Get()
  async metricsText(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    reply.header('content-type', this.metrics.contentType);
    return this.metrics.render();
  }
}
