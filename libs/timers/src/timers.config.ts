import { Module } from '@nestjs/common';
import { capabilityConfigProvider } from '@bufferq/config';
import { TimersEnv, timersEnv } from './timers.env';

/** The validated timers settings (the TIMERS_* variables, defaults filled). */
export const TIMERS_CONFIG = Symbol('TIMERS_CONFIG');
export type TimersConfig = TimersEnv;

export const timersConfigProvider = capabilityConfigProvider(TIMERS_CONFIG, timersEnv);

/** The settings alone, for what is registered beside TimersModule (the delivery queue needs the prefix). */
@Module({ providers: [timersConfigProvider], exports: [timersConfigProvider] })
export class TimersConfigModule {}
