import { operationsEnv } from './operations.env';

const trustProxy = (value?: string) =>
  operationsEnv.parse(value === undefined ? {} : { TRUST_PROXY: value }).TRUST_PROXY;

describe('TRUST_PROXY', () => {
  it('trusts no proxy unless told', () => {
    expect(trustProxy()).toBe(false);
    expect(trustProxy('')).toBe(false);
    expect(trustProxy('false')).toBe(false);
  });

  it('trusts every hop with true, or the listed proxy addresses and CIDR ranges', () => {
    expect(trustProxy('true')).toBe(true);
    expect(trustProxy(' 10.0.0.0/8, 192.168.1.10 ,::1, fd00::/8,loopback ')).toEqual([
      '10.0.0.0/8',
      '192.168.1.10',
      '::1',
      'fd00::/8',
      'loopback',
    ]);
  });

  it('refuses what is neither a boolean nor a list of addresses, ranges or named ranges', () => {
    for (const bad of ['yes', 'proxy.internal', '10.0.0.0/33', '10.0.0.1/', '300.1.1.1']) {
      expect(() => trustProxy(bad)).toThrow(/TRUST_PROXY|address/);
    }
  });
});
