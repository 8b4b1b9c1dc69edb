import { createHmac, createSecretKey, KeyObject } from 'node:crypto';

/**
 * The `webhook-signature` value in the Standard Webhooks layout: the receiver recomputes
 * base64(HMAC-SHA256(secret, `${webhook-id}.${webhook-timestamp}.${body}`)) and compares, then uses
 * `webhook-id` (stable across retries and redeliveries) to drop duplicates. Pass a KeyObject made once
 * (`signingKey`) on hot paths: a string key is converted on every call.
 */
export function webhookSignature(
  secret: string | KeyObject,
  deliveryId: string,
  timestampSeconds: number,
  body: string,
): string {
  const signature = createHmac('sha256', secret).update(`${deliveryId}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${signature}`;
}

export function signingKey(secret: string): KeyObject {
  return createSecretKey(Buffer.from(secret, 'utf8'));
}
