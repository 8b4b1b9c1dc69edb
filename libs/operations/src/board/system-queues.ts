import { DiscoveryService } from '@nestjs/core';
import { Queue } from 'bullmq';

/**
 * Every BullMQ queue among an application's providers, one per Redis prefix and name, sorted by name:
 * a lib that registers a queue (`BullModule.registerQueue`, or a `Queue` provider of its own) is found
 * without being named here. The dashboard and the admin CLI show the same list.
 */
export function systemQueues(discovery: DiscoveryService): Queue[] {
  const byName = new Map<string, Queue>();
  for (const wrapper of discovery.getProviders()) {
    const instance: unknown = wrapper.isDependencyTreeStatic() ? wrapper.instance : undefined;
    if (instance instanceof Queue && !byName.has(instance.qualifiedName)) byName.set(instance.qualifiedName, instance);
  }
  return [...byName.values()].sort(
    (a, b) => a.name.localeCompare(b.name) || a.qualifiedName.localeCompare(b.qualifiedName),
  );
}
