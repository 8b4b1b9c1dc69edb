import { DynamicModule, Module } from '@nestjs/common';
import { BufferedIncrementsModule } from '@bufferq/buffered-increments';
import { bufferedIncrementsRoot, countersCollections } from './counters-buffer';

/** The worker's `flush` role: the flush processor and one job scheduler per buffered collection. */
@Module({})
export class CountersWorkerModule {
  static forRoot(): DynamicModule {
    return {
      module: CountersWorkerModule,
      imports: [bufferedIncrementsRoot(), BufferedIncrementsModule.forWorker(countersCollections())],
    };
  }
}
