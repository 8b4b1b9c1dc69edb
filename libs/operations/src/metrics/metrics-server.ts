import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { MetricsCollector } from './metrics-collector';
import { METRICS_SERVER_CONFIG, MetricsServerConfig } from '../operations.config';

/**
 * `/metrics` (and `/health/live`) on METRICS_PORT for a process that serves no api: the worker. A port
 * already taken fails the boot, so a misconfigured replica is seen at once rather than unscraped.
 */
@Injectable()
export class MetricsServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(MetricsServer.name);
  private server?: Server;

  constructor(
    private readonly metrics: MetricsCollector,
    @Inject(METRICS_SERVER_CONFIG) private readonly config: MetricsServerConfig,
  ) {}

  /** The port it listens on (the one picked when METRICS_PORT is 0). */
  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  async onApplicationBootstrap(): Promise<void> {
    const server = createServer((request, response) => {
      const path = (request.url ?? '').split('?')[0];
      if (request.method === 'GET' && path === '/metrics') {
        this.metrics.render().then(
          (text) => response.writeHead(200, { 'content-type': this.metrics.contentType }).end(text),
          (error: Error) => response.writeHead(500).end(`metrics failed: ${error.message}\n`),
        );
      } else if (request.method === 'GET' && (path === '/health/live' || path === '/health')) {
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      } else response.writeHead(404).end();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.METRICS_PORT, this.config.METRICS_HOST, resolve);
    });
    this.server = server;
    this.logger.log(`metrics on http://${this.config.METRICS_HOST}:${this.port}/metrics`);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
