import { Module } from '@nestjs/common';
import { DueIndex } from './storage/due-index/due-index';
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
  imports: [TimersConfigModule],
  providers: [TimersRepository, DueIndex, TimersService, TimersScheduleMetrics, TimersHealth],
  exports: [TimersConfigModule, TimersRepository, DueIndex, TimersService],
})
export class TimersModule {}
