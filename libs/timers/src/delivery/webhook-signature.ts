import { createHmac } from 'node:crypto';

/**
 * Signature headers in the Standard Webhooks layout: the receiver recomputes
 * base64(HMAC-SHA256(secret, `${webhook-id}.${webhook-timestamp}.${body}`)) and compares, then uses
 * `webhook-id` (stable across retries and redeliveries) to drop duplicates.
 */
export function webhookSignatureHeaders(
  secret: string,
  deliveryId: string,
  timestampSeconds: number,
  body: string,
): Record<string, string> {
  const signature = createHmac('sha256', secret)
    .update(`${deliveryId}.${timestampSeconds}.${body}`)
    .digest('base64');
  return {
    'webhook-id': deliveryId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': `v1,${signature}`,
  };
}
