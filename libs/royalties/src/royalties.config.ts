import { resolve } from 'node:path';
import { Module, Provider } from '@nestjs/common';
import { capabilityConfigProvider } from '@bufferq/config';
import type { BuildInputs } from './consolidation/consolidation';
import { InputPolicy, locationRefusal, normalizedHost } from './inputs/input-policy';
import { RoyaltiesEnv, royaltiesEnv } from './royalties.env';

/** The validated royalties settings (the ROYALTIES_* variables, defaults filled). */
export const ROYALTIES_CONFIG = Symbol('ROYALTIES_CONFIG');
export type RoyaltiesConfig = RoyaltiesEnv;

const royaltiesConfigProvider = capabilityConfigProvider(ROYALTIES_CONFIG, royaltiesEnv);

/** The deployment's InputPolicy (`inputPolicyOf` the settings): the api and the worker read every input through it. */
export const ROYALTIES_INPUT_POLICY = Symbol('ROYALTIES_INPUT_POLICY');

const royaltiesInputPolicyProvider: Provider = {
  provide: ROYALTIES_INPUT_POLICY,
  inject: [ROYALTIES_CONFIG],
  useFactory: inputPolicyOf,
};

/** The settings and the input policy, for every royalties module and the build queue's registration. */
@Module({
  providers: [royaltiesConfigProvider, royaltiesInputPolicyProvider],
  exports: [royaltiesConfigProvider, royaltiesInputPolicyProvider],
})
export class RoyaltiesConfigModule {}

/**
 * Where inputs may come from and how long their lines may be (ROYALTIES_INPUT_ROOT,
 * ROYALTIES_ALLOW_PRIVATE_INPUT_HOSTS, ROYALTIES_MAX_LINE_BYTES). Throws when the policy refuses a default
 * input (ROYALTIES_USERS_CSV, …), so the boot stops: that input would fail every build that relies on it.
 */
export function inputPolicyOf(config: RoyaltiesConfig): InputPolicy {
  const policy: InputPolicy = {
    root: config.ROYALTIES_INPUT_ROOT ? resolve(config.ROYALTIES_INPUT_ROOT) : null,
    privateHosts: config.ROYALTIES_ALLOW_PRIVATE_INPUT_HOSTS.split(',')
      .map((host) => normalizedHost(host.trim()))
      .filter(Boolean),
    maxLineBytes: config.ROYALTIES_MAX_LINE_BYTES,
  };
  for (const name of ['ROYALTIES_USERS_CSV', 'ROYALTIES_STREAMS_CSV', 'ROYALTIES_TRACKS'] as const) {
    const location = config[name];
    const refusal = location === undefined ? undefined : locationRefusal(location, policy);
    if (refusal) throw new Error(`${name}: ${refusal}`);
  }
  return policy;
}

/** The inputs of `POST /royalties/builds` when its body leaves them out. */
export function defaultInputsOf(config: RoyaltiesConfig): Partial<BuildInputs> {
  return {
    usersCsv: config.ROYALTIES_USERS_CSV,
    streamsCsv: config.ROYALTIES_STREAMS_CSV,
    tracks: config.ROYALTIES_TRACKS,
  };
}
