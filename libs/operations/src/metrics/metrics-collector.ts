import { Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { Registry } from 'prom-client';
import { providersOfKind } from '../discovered-providers';
import { CapabilityMetrics } from './capability-metrics';

/**
 * What `/metrics` serves: the metrics of every CapabilityMetrics provider of this app (capabilities',
 * and operations' own: process, queues, HTTP, health), in the Prometheus text format. Two providers
 * declaring one metric name fail the boot.
 */
@Injectable()
export class MetricsCollector implements OnApplicationBootstrap {
  private served = new Registry();

  constructor(private readonly discovery: DiscoveryService) {}

  onApplicationBootstrap(): void {
    this.served = Registry.merge(providersOfKind(this.discovery, CapabilityMetrics).map((source) => source.registry));
  }

  get contentType(): string {
    return this.served.contentType;
  }

  render(): Promise<string> {
    return this.served.metrics();
  }
}
