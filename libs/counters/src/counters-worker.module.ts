import { DynamicModule, Module } from '@nestjs/common';
import { BufferedIncrementsModule } from '@bufferq/buffered-increments';
import { bufferedIncrementsRoot, COUNTERS_BUFFERS } from './counters-buffer';
import { CountersFlushMetrics } from './counters-flush.metrics';

/** The worker's `flush` role: the flush processor and one job scheduler per buffered collection. */
@Module({})
export class CountersWorkerModule {
  static forRoot(): DynamicModule {
    return {
      module: CountersWorkerModule,
      imports: [bufferedIncrementsRoot(), BufferedIncrementsModule.forWorker(COUNTERS_BUFFERS)],
      providers: [CountersFlushMetrics],
    };
  }
}
