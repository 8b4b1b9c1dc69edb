import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
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

@Module({})
class WorkerRolesModule {}

/**
 * The modules of the roles WORKER_ROLES names, decided once ConfigModule has loaded and validated the
 * environment (so nothing reads it while modules are declared). Like @nestjs/config's ConditionalModule,
 * without its timer that throws when a boot was refused for a bad variable and the environment never loads.
 */
export async function workerRoleModules(): Promise<DynamicModule> {
  await ConfigModule.envVariablesLoaded;
  const wanted = rolesNamedIn(process.env.WORKER_ROLES ?? 'all');
  const modules = Object.entries(WORKER_ROLE_MODULES)
    .filter(([role]) => wanted.includes(role))
    .map(([, module]) => module);
  return { module: WorkerRolesModule, imports: modules };
}
