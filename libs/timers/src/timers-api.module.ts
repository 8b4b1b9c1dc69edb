import { Module } from '@nestjs/common';
import { TimersController } from './api/timers.controller';
import { TimersModule } from './timers.module';

/** The `/timers` routes, for the api app. */
@Module({ imports: [TimersModule], controllers: [TimersController] })
export class TimersApiModule {}
