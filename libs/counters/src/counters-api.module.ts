import { Module } from '@nestjs/common';
import { BufferedIncrementsModule } from '@bufferq/buffered-increments';
import { CountersController } from './api/counters.controller';
import { bufferedIncrementsRoot, COUNTERS_BUFFERS } from './counters-buffer';
import { CountersConfigModule } from './counters.config';
import { CountersFlushHealth } from './counters.health';
import { CountersMetrics } from './counters.metrics';
import { CountersService } from './counters.service';

/** The counters routes for the api app: producers only, the worker's `flush` role writes MongoDB. */
@Module({
  imports: [CountersConfigModule, bufferedIncrementsRoot(), BufferedIncrementsModule.forFeature(COUNTERS_BUFFERS)],
  controllers: [CountersController],
  providers: [CountersService, CountersMetrics, CountersFlushHealth],
  exports: [CountersService],
})
export class CountersApiModule {}
