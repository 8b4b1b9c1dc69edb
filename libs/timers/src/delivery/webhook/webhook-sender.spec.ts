import { createHmac } from 'node:crypto';
import { parseWebhookTarget, webhookPath } from './webhook-sender';
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
