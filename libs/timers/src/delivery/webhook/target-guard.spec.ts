import { ForbiddenTargetError, forbiddenTargetReason, isPublicAddress, publicOnlyLookup } from './target-guard';

describe('isPublicAddress', () => {
  it.each(['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows public unicast %s', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  it.each([
    '127.0.0.1',
    '127.8.9.10',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    'not-an-ip',
  ])('refuses %s', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });
});

describe('forbiddenTargetReason', () => {
  it('refuses private literals and localhost names without DNS, and leaves other names to connect time', () => {
    expect(forbiddenTargetReason(new URL('http://127.0.0.1:8080/x'))).toMatch(/not public/);
    expect(forbiddenTargetReason(new URL('http://[::1]/'))).toMatch(/not public/);
    expect(forbiddenTargetReason(new URL('http://LOCALHOST./'))).toMatch(/loopback/);
    expect(forbiddenTargetReason(new URL('http://api.localhost/'))).toMatch(/loopback/);
    expect(forbiddenTargetReason(new URL('https://8.8.8.8/'))).toBeUndefined();
    expect(forbiddenTargetReason(new URL('https://example.com/'))).toBeUndefined();
  });
});

describe('publicOnlyLookup', () => {
  it('fails the connection when the name resolves to a loopback address', async () => {
    const error = await new Promise<unknown>((resolve) =>
      publicOnlyLookup('localhost', { all: true }, (err) => resolve(err)),
    );
    expect(error).toBeInstanceOf(ForbiddenTargetError);
    expect((error as Error).message).toMatch(/non-public address/);
  });

  it('passes through a resolution error', async () => {
    const error = await new Promise<unknown>((resolve) => publicOnlyLookup('name.invalid', {}, (err) => resolve(err)));
    expect((error as NodeJS.ErrnoException).code).toMatch(/ENOTFOUND|EAI_AGAIN/);
  });
});
