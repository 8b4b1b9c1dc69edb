import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { InputPolicy, isUrlLocation, locationRefusal, resolveLocation, STRICT_INPUT_POLICY } from './input-policy';
import { InputUnavailableError } from './input-errors';
import { openInput } from './input-source';

const rooted: InputPolicy = { root: '/data/in', privateHosts: [], maxLineBytes: 1024 };

describe('input locations', () => {
  it('tells http(s) URLs from local paths', () => {
    expect(isUrlLocation('https://example.org/streams.csv')).toBe(true);
    expect(isUrlLocation('HTTP://example.org/x')).toBe(true);
    expect(isUrlLocation('/data/streams.csv')).toBe(false);
    expect(isUrlLocation('file:///etc/passwd')).toBe(false);
  });

  it('refuses every local path without a root, and keeps them inside the root as written when it is set', () => {
    expect(locationRefusal('/etc/passwd', STRICT_INPUT_POLICY)).toBe(
      'local paths are refused unless ROYALTIES_INPUT_ROOT is set',
    );
    expect(locationRefusal('streams.csv', STRICT_INPUT_POLICY)).toBe(
      'local paths are refused unless ROYALTIES_INPUT_ROOT is set',
    );
    expect(locationRefusal('/data/in/streams.csv', rooted)).toBeUndefined();
    expect(locationRefusal('streams.csv', rooted)).toBeUndefined();
    expect(locationRefusal('/data/in/../secret.csv', rooted)).toBe(
      '/data/in/../secret.csv is outside ROYALTIES_INPUT_ROOT',
    );
    expect(locationRefusal('../in-other/x.csv', rooted)).toBe('../in-other/x.csv is outside ROYALTIES_INPUT_ROOT');
    expect(locationRefusal('/etc/passwd', rooted)).toBe('/etc/passwd is outside ROYALTIES_INPUT_ROOT');
    expect(locationRefusal('/data/inside-not.csv', rooted)).toBe(
      '/data/inside-not.csv is outside ROYALTIES_INPUT_ROOT',
    );
  });

  it('refuses URLs that name a non-public address or localhost, unless the host is allow-listed', () => {
    expect(locationRefusal('https://example.org/x.csv', STRICT_INPUT_POLICY)).toBeUndefined();
    expect(locationRefusal('http://93.184.216.34/x.csv', STRICT_INPUT_POLICY)).toBeUndefined();
    for (const url of [
      'http://127.0.0.1/x',
      'http://10.0.0.8/x',
      'http://172.16.1.1/x',
      'http://192.168.1.1/x',
      'http://169.254.169.254/x',
      'http://100.64.0.1/x',
      'http://0.0.0.0/x',
      'http://[::1]/x',
      'http://[fd00::1]/x',
      'http://[fe80::1]/x',
      'http://[::ffff:10.0.0.1]/x',
      'http://0x7f.1/x',
      'http://2130706433/x',
    ]) {
      expect({ url, refusal: locationRefusal(url, STRICT_INPUT_POLICY) }).toEqual({
        url,
        refusal: expect.stringMatching(/is not public$/),
      });
    }
    expect(locationRefusal('http://localhost:8080/x', STRICT_INPUT_POLICY)).toBe('target host localhost is loopback');
    expect(locationRefusal('http://files.localhost/x', STRICT_INPUT_POLICY)).toBe(
      'target host files.localhost is loopback',
    );
    const allowing = (hosts: string[]): InputPolicy => ({
      ...STRICT_INPUT_POLICY,
      privateHosts: hosts,
    });
    expect(locationRefusal('http://127.0.0.1:9000/x', allowing(['127.0.0.1']))).toBeUndefined();
    expect(locationRefusal('http://[::1]:9000/x', allowing(['::1']))).toBeUndefined();
    expect(locationRefusal('http://LOCALHOST./x', allowing(['localhost']))).toBeUndefined();
    expect(locationRefusal('http://10.0.0.8/x', allowing(['127.0.0.1']))).toBe('target address 10.0.0.8 is not public');
    expect(locationRefusal('http://10.0.0.8/x', allowing(['*']))).toBeUndefined();
  });

  it('refuses locations that are neither local paths nor http(s) URLs', () => {
    expect(locationRefusal('http://exa mple.org/x', STRICT_INPUT_POLICY)).toBe('not a valid URL');
  });

  it('stores local paths absolute, against the root when set, and URLs as given', () => {
    expect(resolveLocation('streams.csv', '/data/in')).toBe('/data/in/streams.csv');
    expect(resolveLocation('/abs/streams.csv', '/data/in')).toBe('/abs/streams.csv');
    expect(resolveLocation('streams.csv', null)).toBe(`${process.cwd()}/streams.csv`);
    expect(resolveLocation('https://example.org/a.csv', '/data/in')).toBe('https://example.org/a.csv');
  });
});

describe('openInput from URLs', () => {
  const loopback: InputPolicy = { ...STRICT_INPUT_POLICY, privateHosts: ['127.0.0.1'] };

  it('gives up on a server that never answers, naming the input', async () => {
    const server = createServer(() => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tracks.json`;
    try {
      const opening = openInput(url, loopback, { what: 'track metadata', responseTimeoutMs: 200 });
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
      const input = await openInput(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`, loopback, {
        startByte: 4,
      });
      const chunks: Buffer[] = [];
      for await (const chunk of input.stream) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('456789');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
