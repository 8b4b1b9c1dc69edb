import { Module } from '@nestjs/common';
import { capabilityConfigProvider } from '@bufferq/config';
import { metricsServerEnv, MetricsServerEnv } from './metrics/metrics.env';
import { OperationsEnv, operationsEnv } from './operations.env';

/** The validated operations settings of the api (API keys, rate limits, dashboard, readiness). */
export const OPERATIONS_CONFIG = Symbol('OPERATIONS_CONFIG');
export type OperationsConfig = OperationsEnv;

/** The validated settings of the worker's metrics server (METRICS_PORT, METRICS_HOST). */
export const METRICS_SERVER_CONFIG = Symbol('METRICS_SERVER_CONFIG');
export type MetricsServerConfig = MetricsServerEnv;

const operationsConfigProvider = capabilityConfigProvider(OPERATIONS_CONFIG, operationsEnv);
const metricsServerConfigProvider = capabilityConfigProvider(METRICS_SERVER_CONFIG, metricsServerEnv);

@Module({ providers: [operationsConfigProvider], exports: [operationsConfigProvider] })
export class OperationsConfigModule {}

@Module({ providers: [metricsServerConfigProvider], exports: [metricsServerConfigProvider] })
export class MetricsServerConfigModule {}
