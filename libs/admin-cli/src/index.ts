// The admin CLI (`bufferq`): an operator's commands against a running deployment's Redis and MongoDB.
// The app that runs it wires the datastores and the capability modules whose buffers and queues it shows.
export { AdminCliModule } from './admin-cli.module';
export { runAdminCli, EXIT } from './cli/admin-program';
export { assertDatastoresReachable } from './cli/datastores-reachable';
