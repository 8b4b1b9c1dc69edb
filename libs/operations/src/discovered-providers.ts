import { DiscoveryService } from '@nestjs/core';

/** The app's provider instances of a kind (each once), found among every module's providers. */
export function providersOfKind<T>(discovery: DiscoveryService, kind: abstract new (...args: never[]) => T): T[] {
  const found = new Set<T>();
  for (const wrapper of discovery.getProviders()) {
    const instance: unknown = wrapper.isDependencyTreeStatic() ? wrapper.instance : undefined;
    if (instance instanceof kind) found.add(instance);
  }
  return [...found];
}
