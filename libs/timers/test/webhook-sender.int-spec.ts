import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { WebhookSender } from '../src/delivery/webhook/webhook-sender';
import { fastTimersConfig } from './fixtures/timers-harness';

/** A receiver on 127.0.0.1 whose answer each test chooses; counts TCP connections and requests. */
async function receiver(
  answer: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; connections: () => number; requests: string[]; close(): Promise<void> }> {
  let connections = 0;
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers['content-length']}`);
    req.resume();
    req.on('end', () => answer(req, res));
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks?k=1`,
    connections: () => connections,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('WebhookSender (local receiver)', () => {
  const config = fastTimersConfig({
    TIMERS_DELIVERY_TIMEOUT_MS: '300',
    TIMERS_DELIVERY_CONCURRENCY: '50',
    TIMERS_MAX_CONCURRENCY_PER_HOST: '4',
  });
  let sender: WebhookSender;
  beforeEach(() => {
    sender = new WebhookSender(config);
  });
  afterEach(() => sender.onApplicationShutdown());

  it('reuses keep-alive connections: 400 POSTs to one host over at most the per-host cap of connections', async () => {
    const target = await receiver((_, res) => res.writeHead(204).end());
    try {
      const outcomes = await Promise.all(Array.from({ length: 400 }, (_, i) => sender.send(target.url, `id${i}`)));
      expect(outcomes.every((outcome) => outcome.delivered)).toBe(true);
      expect(target.connections()).toBeLessThanOrEqual(4);
      expect(target.requests[0]).toBe('POST /hooks/id0?k=1 0');
    } finally {
      await target.close();
    }
  });

  it('times out a response whose body trickles past the deadline and frees its slot', async () => {
    const target = await receiver((_, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const drip = setInterval(() => res.write('.'), 50);
      res.on('close', () => clearInterval(drip));
    });
    try {
      // Five attempts, four slots for the host: the fifth starts when a timed-out one frees its slot.
      const started = Date.now();
      const outcomes = await Promise.all(Array.from({ length: 5 }, (_, i) => sender.send(target.url, `slow${i}`)));
      expect(outcomes).toEqual(
        Array.from({ length: 5 }, () => ({
          delivered: false,
          retryable: true,
          error: 'timed out after 300 ms',
        })),
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(590);
      expect(Date.now() - started).toBeLessThan(1_200);
    } finally {
      await target.close();
    }
  });

  it('takes the status of an answer with a large body without reading all of it', async () => {
    const target = await receiver((_, res) => {
      res.writeHead(201);
      res.end(Buffer.alloc(1024 * 1024, 'x'));
    });
    try {
      expect(await sender.send(target.url, 'big')).toEqual({ delivered: true, status: 201 });
      expect(await sender.send(target.url, 'big2')).toEqual({ delivered: true, status: 201 });
    } finally {
      await target.close();
    }
  });

  it('refuses an invalid url and, unless allowed, a private target without sending', async () => {
    expect(await sender.send('not a url', 'x')).toEqual({
      delivered: false,
      retryable: false,
      error: 'invalid url not a url',
    });
    const strict = new WebhookSender(fastTimersConfig({ TIMERS_ALLOW_PRIVATE_TARGETS: 'false' }));
    try {
      expect(await strict.send('http://10.0.0.1/hook', 'x')).toEqual({
        delivered: false,
        retryable: false,
        error: 'target address 10.0.0.1 is not public',
      });
    } finally {
      await strict.onApplicationShutdown();
    }
  });
});
