/**
 * Request headers that carry credentials. pino censors them wherever a log line includes the request
 * (an error logged while a request runs logs all its headers), so keys and passwords never reach logs.
 */
export const REDACTED_LOG_PATHS = [
  'req.headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'headers["x-api-key"]',
  'headers.authorization',
  'headers.cookie',
];

export const LOG_REDACTION = { paths: REDACTED_LOG_PATHS, censor: '[redacted]' };
