import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { InputUnavailableError, isAllowedLocation, isUrlLocation, openInput, resolveLocation } from './input-source';

describe('input locations', () => {
  it('tells http(s) URLs from local paths', () => {
    expect(isUrlLocation('https://example.org/streams.csv')).toBe(true);
    expect(isUrlLocation('HTTP://example.org/x')).toBe(true);
    expect(isUrlLocation('/data/streams.csv')).toBe(false);
    expect(isUrlLocation('file:///etc/passwd')).toBe(false);
  });

  it('keeps local paths inside ROYALTIES_INPUT_ROOT when it is set', () => {
    expect(isAllowedLocation('/etc/passwd', undefined)).toBe(true);
    expect(isAllowedLocation('/data/in/streams.csv', '/data/in')).toBe(true);
    expect(isAllowedLocation('streams.csv', '/data/in')).toBe(true);
    expect(isAllowedLocation('/data/in/../secret.csv', '/data/in')).toBe(false);
    expect(isAllowedLocation('../in-other/x.csv', '/data/in')).toBe(false);
    expect(isAllowedLocation('/etc/passwd', '/data/in')).toBe(false);
    expect(isAllowedLocation('https://example.org/x.csv', '/data/in')).toBe(true);
  });

  it('stores local paths absolute, against the root when set, and URLs as given', () => {
    expect(resolveLocation('streams.csv', '/data/in')).toBe('/data/in/streams.csv');
    expect(resolveLocation('/abs/streams.csv', '/data/in')).toBe('/abs/streams.csv');
    expect(resolveLocation('streams.csv', undefined)).toBe(`${process.cwd()}/streams.csv`);
    expect(resolveLocation('https://example.org/a.csv', '/data/in')).toBe('https://example.org/a.csv');
  });

  it('gives up on a server that never answers, naming the input', async () => {
    const server = createServer(() => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tracks.json`;
    try {
      const opening = openInput(url, { what: 'track metadata', responseTimeoutMs: 200 });
      await expect(opening).rejects.toThrow(InputUnavailableError);
      await expect(opening).rejects.toThrow(`track metadata: cannot fetch ${url}: no response within 200 ms`);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('skips to the byte offset itself when the server ignores the Range header', async () => {
    const server = createServer((_request, response) => response.end('0123456789'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const input = await openInput(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`, { startByte: 4 });
      const chunks: Buffer[] = [];
      for await (const chunk of input.stream) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('456789');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
