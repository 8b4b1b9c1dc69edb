// A webhook target for tests and benchmarks: a node:http server on 127.0.0.1 that records every request
// and answers as the test says.
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';

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
