import { Module } from '@nestjs/common';
import { capabilityConfigProvider } from '@bufferq/config';
import { CountersEnv, countersEnv } from './counters.env';

/** The validated counters settings (the COUNTERS_* variables, defaults filled). */
export const COUNTERS_CONFIG = Symbol('COUNTERS_CONFIG');
export type CountersConfig = CountersEnv;

const countersConfigProvider = capabilityConfigProvider(COUNTERS_CONFIG, countersEnv);

/** Provides COUNTERS_CONFIG to the counters modules and to the buffer's root options. */
@Module({ providers: [countersConfigProvider], exports: [countersConfigProvider] })
export class CountersConfigModule {}
