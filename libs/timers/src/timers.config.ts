import { Provider } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { TimersEnv, timersEnv } from './timers.env';

/** The validated timers settings (the TIMERS_* variables, defaults filled). */
export const TIMERS_CONFIG = Symbol('TIMERS_CONFIG');
export type TimersConfig = TimersEnv;

/**
 * Reads the settings through ConfigService, which the app validated with its schema (extended with
 * `timersEnv`); a variable the app did not validate falls back to parsing it here.
 */
export const timersConfigProvider: Provider = {
  provide: TIMERS_CONFIG,
  inject: [ConfigService],
  useFactory: (config: ConfigService): TimersConfig => {
    const validated = Object.fromEntries(Object.keys(timersEnv.shape).map((key) => [key, config.get(key)]));
    const missing = Object.entries(validated).filter(([, value]) => value === undefined || typeof value === 'string');
    // Values the app schema already validated are typed; raw strings (or gaps) are parsed once more here.
    const parsed = timersEnv.parse(Object.fromEntries(missing)) as Record<string, unknown>;
    return {
      ...validated,
      ...Object.fromEntries(missing.map(([key]) => [key, parsed[key]])),
    } as TimersConfig;
  },
};
