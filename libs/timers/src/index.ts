export { TimersModule } from './timers.module';
export { TimersApiModule } from './timers-api.module';
export { TimersWorkerModule } from './timers-worker.module';
export { TimersService } from './timers.service';
export type { CreateTimerInput, TimerPage } from './timers.service';
export { TimersController } from './api/timers.controller';
export {
  CreateTimerDto,
  ListTimersQueryDto,
  createTimerSchema,
  listTimersSchema,
} from './api/timers.dto';
export { timersEnv } from './timers.env';
export type { TimersEnv } from './timers.env';
export { TIMERS_CONFIG } from './timers.config';
export type { TimersConfig } from './timers.config';
export { TIMER_STATUSES } from './timer';
export type { TimerStatus, TimerView } from './timer';
export { DueIndex } from './scheduling/due-index';
export { TimerScheduler } from './scheduling/timer-scheduler';
export { TimerReconciler } from './scheduling/timer-reconciler';
export { TimerDeliveryService } from './delivery/timer-delivery.service';
export { webhookSignatureHeaders } from './delivery/webhook-signature';
export { isPublicAddress } from './delivery/target-guard';
export { ForbiddenTargetError, forbiddenTargetReason, publicOnlyLookup } from './delivery/target-guard';
export { TIMERS_COLLECTION } from './storage/timers.repository';
