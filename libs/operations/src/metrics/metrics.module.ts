import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { MetricsCollector } from './metrics-collector';
import { MetricsServer } from './metrics-server';
import { ProcessMetrics } from './process-metrics';
import { MetricsServerConfigModule } from '../operations.config';

/** The app's metrics: what every CapabilityMetrics provider declares, and the process's and queues'. */
@Module({
  imports: [DiscoveryModule],
  providers: [MetricsCollector, ProcessMetrics],
  exports: [MetricsCollector],
})
export class MetricsModule {}

/** For a process without an HTTP api (the worker): the same metrics, served on METRICS_PORT. */
@Module({
  imports: [MetricsModule, MetricsServerConfigModule],
  providers: [MetricsServer],
  exports: [MetricsServer],
})
export class MetricsServerModule {}
