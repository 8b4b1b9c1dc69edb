/**
 * The one HTTP server on 127.0.0.1 that fuzzed requests may point the system at: timer webhooks
 * (`/hooks/<behaviour>/...`, the worker POSTs `<url>/<timer id>`) and royalties inputs given as URLs
 * (`/inputs/<name>`). Every other URL the fuzzer generates is refused by the api or names a host that
 * cannot resolve (`.invalid`), so a run never sends traffic off this machine.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { percentEncoded } from './percent-encoding';
import { fuzzedInputFile } from './royalties-inputs';

/** What a webhook target does; the fuzzer picks one per timer by the path it gives. */
export const HOOK_BEHAVIOURS = ['ok', 'ok', 'ok', 'error', 'gone', 'slow', 'reset', 'redirect'] as const;
export type HookBehaviour = (typeof HOOK_BEHAVIOURS)[number];

const TIMER_ID_AT_END = /\/([0-9a-f]{24})$/;

export interface ReceivedWebhooks {
  /** POSTs that ended in a timer id. */
  requests: number;
  /** Distinct timer ids among them. */
  timers: number;
  /** Timer ids POSTed more than once (retries after an error answer are expected to repeat). */
  repeated: number;
}

export class LocalReceiver {
  private server?: Server;
  private readonly hooksByTimer = new Map<string, number>();
  private hookRequests = 0;
  inputRequests = 0;

  constructor(private readonly seed: number) {}

  get origin(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((request, response) => this.answer(request, response));
    // A hook that hangs must not keep the run from ending.
    this.server.requestTimeout = 30_000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  webhooks(): ReceivedWebhooks {
    let repeated = 0;
    for (const count of this.hooksByTimer.values()) if (count > 1) repeated += 1;
    return { requests: this.hookRequests, timers: this.hooksByTimer.size, repeated };
  }

  deliveredTimerIds(): Set<string> {
    return new Set(this.hooksByTimer.keys());
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  private answer(request: IncomingMessage, response: ServerResponse): void {
    const url = request.url ?? '/';
    request.resume();
    request.once('error', () => undefined);
    response.once('error', () => undefined);
    if (url.startsWith('/inputs/')) {
      this.inputRequests += 1;
      let name: string;
      try {
        name = decodeURIComponent(url.slice('/inputs/'.length).split('?')[0]);
      } catch {
        name = 'missing';
      }
      this.serveInput(name, response);
      return;
    }
    if (url.startsWith('/hooks/')) {
      const timerId = TIMER_ID_AT_END.exec(url.split('?')[0])?.[1];
      if (timerId && request.method === 'POST') {
        this.hookRequests += 1;
        this.hooksByTimer.set(timerId, (this.hooksByTimer.get(timerId) ?? 0) + 1);
      }
      this.hook(url.split('/')[2] as HookBehaviour, response);
      return;
    }
    response.writeHead(404).end();
  }

  private hook(behaviour: HookBehaviour, response: ServerResponse): void {
    switch (behaviour) {
      case 'error':
        response.writeHead(500).end('receiver error');
        return;
      case 'gone':
        response.writeHead(410).end();
        return;
      case 'slow':
        setTimeout(() => response.writeHead(200).end(), 1_500).unref();
        return;
      case 'reset':
        response.socket?.destroy();
        return;
      case 'redirect':
        response.writeHead(302, { location: '/hooks/ok/redirected' }).end();
        return;
      default:
        response.writeHead(200).end();
    }
  }

  private serveInput(name: string, response: ServerResponse): void {
    if (name.startsWith('redirect/')) {
      response.writeHead(302, { location: `/inputs/${percentEncoded(name.slice('redirect/'.length))}` }).end();
      return;
    }
    if (name === 'missing') {
      response.writeHead(404).end();
      return;
    }
    if (name === 'error') {
      response.writeHead(503).end();
      return;
    }
    const file = fuzzedInputFile(name, this.seed);
    if (file === undefined) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/octet-stream' });
    // Sent in pieces, so readers meet lines and UTF-8 sequences cut across chunks.
    let offset = 0;
    const step = () => {
      while (offset < file.length) {
        const piece = file.subarray(offset, offset + 7_919);
        offset += piece.length;
        if (!response.write(piece)) {
          response.once('drain', step);
          return;
        }
      }
      response.end();
    };
    step();
  }
}
