import { Module } from '@nestjs/common';
import { DueIndex } from './storage/due-index/due-index';
import { TimerDeliveryQueue, TimerDeliveryQueueModule } from './storage/timer-delivery-queue';
import { TimersRepository } from './storage/timers.repository';
import { TimersConfigModule } from './timers.config';
import { TimersHealth } from './timers.health';
import { TimersScheduleMetrics } from './timers.metrics';
import { TimersService } from './timers.service';

/**
 * Timers as a library: create, read, cancel and retry (TimersService). Needs the global DatastoresModule
 * and ConfigModule; the api mounts TimersApiModule, the worker TimersWorkerModule.
 */
@Module({
  // The delivery queue is a provider of the app (BullModule), so the api's dashboard and the admin CLI list it.
  imports: [TimersConfigModule, TimerDeliveryQueueModule],
  providers: [TimersRepository, DueIndex, TimersService, TimersScheduleMetrics, TimersHealth, TimerDeliveryQueue],
  exports: [TimersConfigModule, TimersRepository, DueIndex, TimersService, TimerDeliveryQueue],
})
export class TimersModule {}
