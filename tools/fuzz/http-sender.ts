/**
 * Sends fuzzed requests: well-formed ones through a keep-alive connection pool (undici), malformed
 * ones as bytes on a connection of their own. A request the HTTP client refuses to send (a character
 * it will not put in a path) goes out as bytes too, so every generated request reaches the server.
 */
import { connect } from 'node:net';
import { errors, Pool } from 'undici';
import type { FuzzRequest } from './request-generator';

export interface FuzzResponse {
  /** Undefined when no status line came back. */
  status?: number;
  /** Why no answer came (timeout, reset, closed), when none did. */
  error?: string;
  /** The first bytes of the body, as text. */
  body: string;
  /** The `x-request-id` the api answered with. */
  requestId?: string;
  ms: number;
  /** Sent as bytes on its own connection. */
  raw: boolean;
}

const BODY_KEPT = 4_096;
const HALF_CLOSE_AFTER_MS = 1_000;
/** Well under Node's 16 KiB limit on the request line and headers together. */
const OWN_CONNECTION_HEAD_BYTES = 8_192;

export class HttpSender {
  private readonly pool: Pool;
  private readonly host: string;
  private readonly port: number;

  constructor(
    origin: string,
    connections: number,
    private readonly timeoutMs: number,
  ) {
    this.pool = new Pool(origin, {
      connections,
      pipelining: 1,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 4_000,
    });
    const url = new URL(origin);
    this.host = url.hostname;
    this.port = Number(url.port);
  }

  async send(request: FuzzRequest): Promise<FuzzResponse> {
    if (request.raw) return this.sendRaw(request.raw);
    // The server answers a request line and headers past its limit (431) and closes the connection without
    // saying so; a pooled connection would then fail the next request on it. Such requests get their own.
    if (headBytes(request) > OWN_CONNECTION_HEAD_BYTES) return this.sendRaw(asBytes(request, this.host, this.port));
    const began = performance.now();
    try {
      const response = await this.pool.request({
        method: request.method as never,
        path: request.target,
        headers: request.headers,
        body: request.body,
      });
      const bytes = Buffer.from(await response.body.arrayBuffer());
      const requestId = response.headers['x-request-id'];
      return {
        status: response.statusCode,
        body: bytes.subarray(0, BODY_KEPT).toString('utf8'),
        requestId: typeof requestId === 'string' ? requestId : undefined,
        ms: performance.now() - began,
        raw: false,
      };
    } catch (error) {
      // The client would not send it as asked (a path or header it validates): send the same bytes by hand.
      if (error instanceof errors.InvalidArgumentError || error instanceof errors.NotSupportedError)
        return this.sendRaw(asBytes(request, this.host, this.port));
      return { error: describe(error), body: '', ms: performance.now() - began, raw: false };
    }
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }

  /**
   * Writes the bytes and reads what comes back until the server closes. After a second the connection is
   * half-closed, which ends a message that leaves the server waiting (a body shorter than its
   * content-length) and a kept-alive connection; not at once, since a server that sees the end of the
   * input while it reads a message may drop the answer it was about to write (431, 400).
   * Only the first final status line is reported; a message dropped without one is `closed without response`.
   */
  private sendRaw(bytes: Buffer): Promise<FuzzResponse> {
    const began = performance.now();
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let received = 0;
      let settled = false;
      const socket = connect({ host: this.host, port: this.port });
      const finish = (error?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        // Interim answers (100 Continue) come before the one that counts.
        const text = Buffer.concat(chunks)
          .toString('latin1')
          .replace(/^(HTTP\/\d\.\d 1\d\d[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n)+/, '');
        const status = /^HTTP\/\d\.\d (\d{3})/.exec(text)?.[1];
        const headerEnd = text.indexOf('\r\n\r\n');
        const requestId = /\r\nx-request-id: ([^\r\n]*)/i.exec(headerEnd < 0 ? text : text.slice(0, headerEnd))?.[1];
        resolve({
          status: status ? Number(status) : undefined,
          error: status ? undefined : (error ?? 'closed without response'),
          body:
            headerEnd < 0
              ? ''
              : Buffer.from(text.slice(headerEnd + 4, headerEnd + 4 + BODY_KEPT), 'latin1').toString('utf8'),
          requestId,
          ms: performance.now() - began,
          raw: true,
        });
      };
      const timer = setTimeout(() => finish(`no answer within ${this.timeoutMs} ms`), this.timeoutMs);
      const halfClose = setTimeout(() => socket.end(), HALF_CLOSE_AFTER_MS);
      socket.on('data', (chunk: Buffer) => {
        if (received < 64 * 1024) chunks.push(chunk);
        received += chunk.length;
      });
      socket.on('error', (error) => finish(describe(error)));
      socket.on('close', () => {
        clearTimeout(halfClose);
        finish();
      });
      socket.write(bytes);
    });
  }
}

function headBytes(request: FuzzRequest): number {
  return Object.entries(request.headers).reduce(
    (sum, [name, value]) => sum + name.length + value.length + 4,
    request.target.length + request.method.length + 12,
  );
}

/** The request as bytes, for one the HTTP client refused or one that gets a connection of its own. */
function asBytes(request: FuzzRequest, host: string, port: number): Buffer {
  const body = request.body ?? Buffer.alloc(0);
  const lines = [
    `${request.method} ${request.target} HTTP/1.1`,
    `host: ${host}:${port}`,
    'connection: close',
    ...Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`),
  ];
  if (body.length || request.method !== 'GET') lines.push(`content-length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${(error as { code?: string }).code ?? error.name}: ${error.message}`;
  return String(error);
}
