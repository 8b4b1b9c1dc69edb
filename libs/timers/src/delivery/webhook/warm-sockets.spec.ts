import { createServer, Server } from 'node:http';
import { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { timersEnv } from '../../timers.env';
import { WarmSockets } from './warm-sockets';
import { WebhookSender } from './webhook-sender';

/** A webhook target that answers 200 and records when each connection came and each request. */
async function target(onConnection: (socket: Socket) => void = () => undefined) {
  const events: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    events.push(`request ${req.url}`);
    req.resume();
    req.on('end', () => res.writeHead(200).end());
  });
  server.on('connection', (socket: Socket) => {
    events.push('connection');
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const stop = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { url, events, sockets, stop };
}

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('connections opened ahead (WebhookSender.connectAhead, WarmSockets)', () => {
  const config = (overrides: Record<string, string> = {}) =>
    timersEnv.parse({
      TIMERS_ALLOW_PRIVATE_TARGETS: 'true',
      TIMERS_MAX_CONCURRENCY_PER_HOST: '3',
      TIMERS_DELIVERY_WARMUP_POSTS: '0',
      ...overrides,
    });

  it('opens as many connections as POSTs will be in flight, before they are sent, and the POSTs use them', async () => {
    const receiver = await target();
    const sender = new WebhookSender(config());
    try {
      const url = `${receiver.url}/hooks`;
      sender.connectAhead([url, url, url, url, url]);
      await until(() => receiver.events.length === 3);
      expect(receiver.events).toEqual(['connection', 'connection', 'connection']);

      // Asked again (the next batch of armed timers): the connections already open count.
      sender.connectAhead([url, url, url]);
      await sleep(50);
      expect(receiver.events).toHaveLength(3);

      const outcomes = await Promise.all(['a', 'b', 'c'].map((id) => sender.send(url, id)));
      expect(outcomes.map((outcome) => outcome.delivered)).toEqual([true, true, true]);
      expect(receiver.events.filter((event) => event === 'connection')).toHaveLength(3);
      expect(receiver.events.slice(3).sort()).toEqual(['request /hooks/a', 'request /hooks/b', 'request /hooks/c']);
    } finally {
      await sender.onApplicationShutdown();
      await receiver.stop();
    }
  });

  it('does not hand out a connection the server closed while it waited; the POST connects anew', async () => {
    let refuseNext = true;
    const receiver = await target((socket) => {
      if (refuseNext) {
        refuseNext = false;
        socket.destroy();
      }
    });
    const sender = new WebhookSender(config());
    try {
      const url = `${receiver.url}/hooks`;
      sender.connectAhead([url]);
      await until(() => receiver.events.length === 1);
      await sleep(50);
      expect(await sender.send(url, 'a')).toEqual({ delivered: true, status: 200 });
      expect(receiver.events).toEqual(['connection', 'connection', 'request /hooks/a']);
    } finally {
      await sender.onApplicationShutdown();
      await receiver.stop();
    }
  });

  it('closes connections not used within their idle time', async () => {
    const receiver = await target();
    const warm = new WarmSockets({ timeout: 1_000 }, 10, 100);
    try {
      warm.open(receiver.url, 2);
      await until(() => receiver.sockets.size === 2);
      expect(warm.waiting(receiver.url)).toBe(2);
      await until(() => receiver.sockets.size === 0);
      expect(warm.waiting(receiver.url)).toBe(0);
    } finally {
      warm.close();
      await receiver.stop();
    }
  });
});
