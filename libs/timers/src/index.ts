// Durable webhook timers. Apps mount TimersApiModule (routes) and TimersWorkerModule (the `timers` worker
// role) and extend their env schema with timersEnv; other libs use the timers as a library (TimersModule,
// TimersService, the schedule's DueIndex) and the webhook address guard; the benchmarks the sender.
export { TimersModule } from './timers.module';
export { TimersApiModule } from './timers-api.module';
export { TimersWorkerModule } from './timers-worker.module';
export { TimersService } from './timers.service';
export { DueIndex } from './storage/due-index/due-index';
export { TIMERS_COLLECTION } from './storage/timers.repository';
export { timersEnv } from './timers.env';
export { WebhookSender } from './delivery/webhook/webhook-sender';
export type { TimerStatus } from './timer';
export { forbiddenTargetReason, isPublicAddress, publicOnlyLookup } from './delivery/webhook/target-guard';
