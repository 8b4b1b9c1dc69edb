import { isAllowedLocation, isUrlLocation, resolveLocation } from './input-source';

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
});
