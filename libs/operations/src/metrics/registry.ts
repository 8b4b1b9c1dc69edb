import { register } from 'prom-client';

/** A metric of the process-wide registry; an app built twice in one process (tests) reuses it. */
export function processMetric<T>(name: string, create: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? create();
}
