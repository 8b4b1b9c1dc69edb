import { createHmac } from 'node:crypto';
import { webhookTarget } from './webhook-sender';
import { webhookSignatureHeaders } from './webhook-signature';

describe('webhookTarget', () => {
  it('appends the id as one path segment, keeping the query and dropping the fragment', () => {
    expect(webhookTarget('https://someserver.com', '1').toString()).toBe('https://someserver.com/1');
    expect(webhookTarget('https://someserver.com/hooks/', 'abc').toString()).toBe('https://someserver.com/hooks/abc');
    expect(webhookTarget('https://someserver.com/hooks?x=1#frag', 'abc').toString()).toBe(
      'https://someserver.com/hooks/abc?x=1',
    );
  });
});

describe('webhookSignatureHeaders', () => {
  it('signs id, timestamp and body with HMAC-SHA256 in the Standard Webhooks layout', () => {
    const headers = webhookSignatureHeaders('secret', 'abc', 1_700_000_000, '');
    const expected = createHmac('sha256', 'secret').update('abc.1700000000.').digest('base64');
    expect(headers).toEqual({
      'webhook-id': 'abc',
      'webhook-timestamp': '1700000000',
      'webhook-signature': `v1,${expected}`,
    });
    expect(webhookSignatureHeaders('other', 'abc', 1_700_000_000, '')['webhook-signature']).not.toBe(
      headers['webhook-signature'],
    );
  });
});
