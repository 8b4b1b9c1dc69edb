import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { collectDefaultMetrics, register } from 'prom-client';
import { PublicEndpoint } from '../access/public-endpoint.decorator';

let defaultMetricsCollected = false;

/** Prometheus text format: counters, buffer, flush and HTTP metrics, plus the Node.js process metrics. */
@ApiExcludeController()
@PublicEndpoint()
@Controller('metrics')
export class MetricsController {
  constructor() {
    if (!defaultMetricsCollected) collectDefaultMetrics();
    defaultMetricsCollected = true;
  }

  @Get()
  @Header('content-type', register.contentType)
  metrics(): Promise<string> {
    return register.metrics();
  }
}
