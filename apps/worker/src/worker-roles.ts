import { ConditionalModule } from '@nestjs/config';
import { z } from 'zod';
import { TimersWorkerModule } from '@bufferq/timers';
import { RoyaltiesWorkerModule } from '@bufferq/royalties';
import { CountersWorkerModule } from '@bufferq/counters';

/**
 * One image serves every worker role; WORKER_ROLES (comma-separated, or `all`) picks which processors a
 * replica runs. Each capability lib contributes its worker module here under its role name.
 */
const WORKER_ROLE_MODULES = {
  timers: TimersWorkerModule,
  royalties: RoyaltiesWorkerModule,
  flush: CountersWorkerModule.forRoot(),
};
const KNOWN_ROLES = Object.keys(WORKER_ROLE_MODULES);

function rolesNamedIn(value: string): string[] {
  if (value.trim() === 'all') return KNOWN_ROLES;
  return value
    .split(',')
    .map((role) => role.trim())
    .filter(Boolean);
}

/** WORKER_ROLES in the worker's env schema: boot fails naming a role no lib provides. */
export const workerRolesSetting = z
  .string()
  .min(1)
  .default('all')
  .superRefine((value, ctx) => {
    const unknown = rolesNamedIn(value).filter((role) => !KNOWN_ROLES.includes(role));
    if (unknown.length) ctx.addIssue({ code: 'custom', message: `unknown roles ${unknown} (known: ${KNOWN_ROLES})` });
  });

/**
 * Each role's module, imported only when WORKER_ROLES names it. ConditionalModule decides once the
 * environment is loaded and validated, so nothing reads it while modules are being declared.
 */
export function workerRoleModules() {
  return Object.entries(WORKER_ROLE_MODULES).map(([role, module]) =>
    ConditionalModule.registerWhen(module, (env: NodeJS.ProcessEnv) =>
      rolesNamedIn(env.WORKER_ROLES ?? 'all').includes(role),
    ),
  );
}
