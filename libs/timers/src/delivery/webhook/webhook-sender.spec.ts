import { createHmac } from 'node:crypto';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { timersEnv } from '../../timers.env';
import { parseWebhookTarget, SendOutcome, WebhookSender, webhookPath } from './webhook-sender';
import { signingKey, webhookSignature } from './webhook-signature';

describe('webhook target', () => {
  const target = (url: string, id: string) => {
    const parsed = parseWebhookTarget(url);
    return `${parsed.origin}${webhookPath(parsed, id)}`;
  };

  it('appends the id as one path segment, keeping the query and dropping the fragment', () => {
    expect(target('https://someserver.com', '1')).toBe('https://someserver.com/1');
    expect(target('https://someserver.com/hooks/', 'abc')).toBe('https://someserver.com/hooks/abc');
    expect(target('https://someserver.com/hooks?x=1#frag', 'abc')).toBe('https://someserver.com/hooks/abc?x=1');
  });
});

describe('webhookSignature', () => {
  it('signs id, timestamp and body with HMAC-SHA256 in the Standard Webhooks layout', () => {
    const signature = webhookSignature(signingKey('secret'), 'abc', 1_700_000_000, '');
    const expected = createHmac('sha256', 'secret').update('abc.1700000000.').digest('base64');
    expect(signature).toBe(`v1,${expected}`);
    expect(webhookSignature(signingKey('other'), 'abc', 1_700_000_000, '')).not.toBe(signature);
  });
});

describe('WebhookSender signatures made ahead (signAhead)', () => {
  const secret = 'sign-ahead-secret';
  let server: Server;
  let url: string;
  const received: Array<{ id: string; timestamp: number; signature: string }> = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      received.push({
        id: String(req.headers['webhook-id']),
        timestamp: Number(req.headers['webhook-timestamp']),
        signature: String(req.headers['webhook-signature']),
      });
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const sender = () =>
    new WebhookSender(
      timersEnv.parse({
        TIMERS_ALLOW_PRIVATE_TARGETS: 'true',
        TIMERS_DELIVERY_WARMUP_POSTS: '0',
        TIMERS_SIGNING_SECRET: secret,
      }),
    );
  const valid = ({ id, timestamp, signature }: (typeof received)[number]) =>
    signature === webhookSignature(signingKey(secret), id, timestamp, '');

  it('sends a signature valid for the timestamp it sends, whether the POST goes out in the second it was signed for or not', async () => {
    const webhooks = sender();
    try {
      const now = Date.now();
      webhooks.signAhead([
        { id: 'on-time', runAt: now },
        { id: 'late', runAt: now - 10_000 },
        { id: 'early', runAt: now + 10_000 },
      ]);
      const outcomes = await Promise.all(['on-time', 'late', 'early', 'unsigned'].map((id) => webhooks.send(url, id)));
      expect(outcomes).toEqual(Array(4).fill({ delivered: true, status: 204 }));
      const byId = new Map(received.map((request) => [request.id, request]));
      for (const id of ['on-time', 'late', 'early', 'unsigned']) {
        expect(byId.get(id)!.timestamp).toBeGreaterThanOrEqual(Math.floor(now / 1000));
        expect(valid(byId.get(id)!)).toBe(true);
      }
    } finally {
      await webhooks.onApplicationShutdown();
    }
  });

  it('signs a timer sent again (a retry) for the second it is sent in, not the one signed ahead', async () => {
    const webhooks = sender();
    try {
      webhooks.signAhead([{ id: 'twice', runAt: Date.now() - 5_000 }]);
      await webhooks.send(url, 'twice');
      await webhooks.send(url, 'twice');
      const requests = received.filter((request) => request.id === 'twice');
      expect(requests).toHaveLength(2);
      expect(requests.every(valid)).toBe(true);
    } finally {
      await webhooks.onApplicationShutdown();
    }
  });
});

describe('WebhookSender.sendThen', () => {
  it('passes a refused target its outcome once, after the call returned', async () => {
    const webhooks = new WebhookSender(timersEnv.parse({ TIMERS_DELIVERY_WARMUP_POSTS: '0' }));
    try {
      const outcomes: SendOutcome[] = [];
      webhooks.sendThen('http://127.0.0.1:1/hooks', 'x', (outcome) => outcomes.push(outcome));
      expect(outcomes).toEqual([]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(outcomes).toEqual([{ delivered: false, retryable: false, error: expect.any(String) }]);
    } finally {
      await webhooks.onApplicationShutdown();
    }
  });
});
