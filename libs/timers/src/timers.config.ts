import { capabilityConfigProvider } from '@bufferq/config';
import { TimersEnv, timersEnv } from './timers.env';

/** The validated timers settings (the TIMERS_* variables, defaults filled). */
export const TIMERS_CONFIG = Symbol('TIMERS_CONFIG');
export type TimersConfig = TimersEnv;

export const timersConfigProvider = capabilityConfigProvider(TIMERS_CONFIG, timersEnv);
