// Shared set-up for the timers integration tests: a local webhook receiver, a timers worker built from
// the real modules against the real Redis and MongoDB-wire server, and the timers library service.
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { ConsoleLogger } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { Test, TestingModule } from '@nestjs/testing';
import { Db } from 'mongodb';
import { Redis } from 'ioredis';
import { DatastoresModule, MONGO_DB, REDIS_CLIENT } from '@bufferq/datastores';
import { TIMERS_CONFIG, TimersEnv, timersEnv, TimersModule, TimersService, TimersWorkerModule } from '@bufferq/timers';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

/** What the receiver does with a request: answer with a status, or never answer. */
export type ReceiverBehaviour = (
  request: ReceivedRequest,
  countForPath: number,
) => number | 'hang' | { status: number; location: string };

/** A webhook target on 127.0.0.1 that records every request it gets. */
export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  behaviour: ReceiverBehaviour = () => 200;
  inFlight = 0;
  maxInFlight = 0;
  /** TCP connections accepted (keep-alive reuse shows as far fewer connections than requests). */
  connections = 0;
  private server?: Server;
  private delayMs = 0;
  private readonly byPath = new Map<string, ReceivedRequest[]>();

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  /** Makes every answer wait this long (to observe concurrency). */
  respondAfter(ms: number): void {
    this.delayMs = ms;
  }

  requestsFor(path: string): ReceivedRequest[] {
    return this.byPath.get(path) ?? [];
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const request: ReceivedRequest = {
          method: req.method!,
          path: req.url!,
          headers: req.headers,
          body,
          at: Date.now(),
        };
        this.requests.push(request);
        const forPath = this.byPath.get(request.path) ?? [];
        forPath.push(request);
        this.byPath.set(request.path, forPath);
        const answer = this.behaviour(request, this.requestsFor(request.path).length);
        if (answer === 'hang') return;
        const respond = () => {
          if (typeof answer === 'number') res.writeHead(answer).end();
          else res.writeHead(answer.status, { location: answer.location }).end();
        };
        // No timer when there is no delay: a burst's answers would each wait a timer tick (>= 1 ms).
        if (!this.delayMs) return respond();
        this.inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        setTimeout(() => {
          this.inFlight--;
          respond();
        }, this.delayMs);
      });
    });
    this.server.on('connection', () => this.connections++);
    // Node's default keep-alive (5 s, announced as `Keep-Alive: timeout=5`), as a typical receiver has it:
    // a shorter one makes undici open a connection per request. `stop()` closes idle sockets itself.
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

/** Settings for fast tests: short polls and backoff; a private target (the local receiver) allowed. */
export function fastTimersConfig(overrides: Partial<Record<keyof TimersEnv, string>> = {}): TimersEnv {
  return timersEnv.parse({
    TIMERS_ALLOW_PRIVATE_TARGETS: 'true',
    TIMERS_SCHEDULER_POLL_MS: '20',
    TIMERS_RECONCILE_INTERVAL_MS: '300',
    TIMERS_BACKOFF_BASE_MS: '100',
    TIMERS_BACKOFF_MAX_MS: '400',
    TIMERS_DELIVERY_TIMEOUT_MS: '1000',
    TIMERS_MAX_ATTEMPTS: '3',
    TIMERS_SIGNING_SECRET: 'test-signing-secret-0123456789',
    ...overrides,
  });
}

export interface TimersContext {
  app: TestingModule;
  timers: TimersService;
  redis: Redis;
  db: Db;
  close(): Promise<void>;
}

/**
 * The timers library as a process runs it: `worker: true` adds the `timers` worker role (scheduler,
 * reconciler, delivery processor) with its lifecycle hooks started. `queueRedisUrl` puts the delivery
 * queue (BullMQ, which connects through REDIS_URL) on another server than the schedule, so a test can
 * break the queue alone.
 */
export async function startTimers(options: {
  redisUrl: string;
  mongoUrl: string;
  mongoDb: string;
  config: TimersEnv;
  worker: boolean;
  queueRedisUrl?: string;
}): Promise<TimersContext> {
  const app = await Test.createTestingModule({
    imports: [
      ConfigModule.forRoot({
        isGlobal: true,
        ignoreEnvFile: true,
        skipProcessEnv: true,
        load: [() => ({ REDIS_URL: options.queueRedisUrl ?? options.redisUrl })],
      }),
      DatastoresModule.forRoot({
        redisUrl: options.redisUrl,
        mongoUrl: options.mongoUrl,
        mongoDb: options.mongoDb,
      }),
      options.worker ? TimersWorkerModule : TimersModule,
    ],
  })
    .overrideProvider(TIMERS_CONFIG)
    .useValue(options.config)
    .setLogger(process.env.TIMERS_TEST_LOGS ? new ConsoleLogger() : silentLogger)
    .compile();
  await app.init();
  return {
    app,
    timers: app.get(TimersService),
    redis: app.get<Redis>(REDIS_CLIENT),
    db: app.get<Db>(MONGO_DB),
    close: () => app.close(),
  };
}

const silentLogger = { log() {}, error() {}, warn() {}, debug() {}, verbose() {}, fatal() {} };
