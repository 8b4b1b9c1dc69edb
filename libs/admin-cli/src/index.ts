// The admin CLI (`bufferq`): an operator's commands against a running deployment's Redis and MongoDB.
// The app that runs it wires the datastores and the capability modules whose buffers and queues it shows.
export { AdminCliModule } from './admin-cli.module';
export { runAdminCli, EXIT } from './cli/admin-program';
export type { AdminCliOptions } from './cli/admin-program';
export { assertDatastoresReachable, DatastoreUnreachableError } from './cli/datastores-reachable';
export { BufferAdmin } from './buffers/buffer-admin';
export type { BufferSummary } from './buffers/buffer-admin';
export { QueueAdmin } from './queues/queue-admin';
export type { QueueDepth } from './queues/queue-admin';
export { TimerAdmin } from './timers/timer-admin';
export type { TimerSummary } from './timers/timer-admin';
