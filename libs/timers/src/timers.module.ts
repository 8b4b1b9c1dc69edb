import { Module } from '@nestjs/common';
import { DueIndex } from './storage/due-index/due-index';
import { TimersRepository } from './storage/timers.repository';
import { timersConfigProvider } from './timers.config';
import { TimersService } from './timers.service';

/**
 * Timers as a library: create, read, cancel and retry (TimersService). Needs the global DatastoresModule
 * and ConfigModule; the api mounts TimersApiModule, the worker TimersWorkerModule.
 */
@Module({
  providers: [timersConfigProvider, TimersRepository, DueIndex, TimersService],
  exports: [timersConfigProvider, TimersRepository, DueIndex, TimersService],
})
export class TimersModule {}
