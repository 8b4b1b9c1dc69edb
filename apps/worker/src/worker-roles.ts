import { DynamicModule, Type } from '@nestjs/common';
import { TimersWorkerModule } from '@bufferq/timers';
import { RoyaltiesWorkerModule } from '@bufferq/royalties';
import { CountersWorkerModule } from '@bufferq/counters';

/**
 * One image serves every worker role; WORKER_ROLES (comma-separated, or `all`) picks which processors a
 * replica runs. Each capability lib contributes its worker module here under its role name.
 */
export const WORKER_ROLE_MODULES: Record<string, () => Array<Type | DynamicModule>> = {
  timers: () => [TimersWorkerModule],
  royalties: () => [RoyaltiesWorkerModule],
  flush: () => [CountersWorkerModule.forRoot()],
};

export function modulesForRoles(roles: string): Array<Type | DynamicModule> {
  const known = Object.keys(WORKER_ROLE_MODULES);
  const wanted =
    roles.trim() === 'all'
      ? known
      : roles
          .split(',')
          .map((role) => role.trim())
          .filter(Boolean);
  const unknown = wanted.filter((role) => !known.includes(role));
  if (unknown.length)
    throw new Error(`WORKER_ROLES names unknown roles: ${unknown.join(', ')} (known: ${known.join(', ')})`);
  return wanted.flatMap((role) => WORKER_ROLE_MODULES[role]());
}
