import { readCapabilityConfig } from '@bufferq/config';
import { defaultInputsOf, inputPolicyOf, RoyaltiesConfig } from './royalties.config';
import { royaltiesEnv } from './royalties.env';

/** The typed settings of an environment, as the config provider builds them. */
const configOf = (env: Record<string, string>): RoyaltiesConfig =>
  readCapabilityConfig(royaltiesEnv, (key) => env[key]);

describe('royalties settings', () => {
  it('refuses local inputs and private addresses by default, and caps lines at 64 KiB', () => {
    expect(inputPolicyOf(configOf({}))).toEqual({
      root: null,
      privateHosts: [],
      maxLineBytes: 65536,
    });
  });

  it('reads the input root (absolute), the allow-listed private hosts and the line cap', () => {
    const config = configOf({
      ROYALTIES_INPUT_ROOT: 'data/in',
      ROYALTIES_ALLOW_PRIVATE_INPUT_HOSTS: ' 127.0.0.1, Files.Internal. ,[::1],',
      ROYALTIES_MAX_LINE_BYTES: '1024',
    });
    expect(inputPolicyOf(config)).toEqual({
      root: `${process.cwd()}/data/in`,
      privateHosts: ['127.0.0.1', 'files.internal', '::1'],
      maxLineBytes: 1024,
    });
  });

  it('refuses, at boot, a default input that the input policy refuses', () => {
    expect(() => inputPolicyOf(configOf({ ROYALTIES_USERS_CSV: '/data/users.csv' }))).toThrow(
      'ROYALTIES_USERS_CSV: local paths are refused unless ROYALTIES_INPUT_ROOT is set',
    );
    expect(() =>
      inputPolicyOf(configOf({ ROYALTIES_INPUT_ROOT: '/data/in', ROYALTIES_STREAMS_CSV: '../streams.csv' })),
    ).toThrow('ROYALTIES_STREAMS_CSV: ../streams.csv is outside ROYALTIES_INPUT_ROOT');
    expect(() => inputPolicyOf(configOf({ ROYALTIES_TRACKS: 'http://10.0.0.5/tracks.json' }))).toThrow(
      'ROYALTIES_TRACKS: target address 10.0.0.5 is not public',
    );
    const allowed = configOf({
      ROYALTIES_INPUT_ROOT: '/data/in',
      ROYALTIES_USERS_CSV: 'users.csv',
      ROYALTIES_TRACKS: 'http://10.0.0.5/t.json',
      ROYALTIES_ALLOW_PRIVATE_INPUT_HOSTS: '10.0.0.5',
    });
    expect(() => inputPolicyOf(allowed)).not.toThrow();
    expect(defaultInputsOf(allowed)).toEqual({
      usersCsv: 'users.csv',
      streamsCsv: undefined,
      tracks: 'http://10.0.0.5/t.json',
    });
  });

  it('refuses a line cap below 64 bytes', () => {
    expect(() => configOf({ ROYALTIES_MAX_LINE_BYTES: '10' })).toThrow(/ROYALTIES_MAX_LINE_BYTES|too small|>=64/);
  });
});
