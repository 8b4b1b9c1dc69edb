import { Module } from '@nestjs/common';
import { Db } from 'mongodb';
import { MONGO_DB } from '@bufferq/datastores';
import { RoyaltiesBuildsController, RoyaltiesReportsController } from './api/royalties.controller';
import { RoyaltiesService } from './api/royalties.service';
import { RoyaltiesBuildHealth } from './build/royalties-build.health';
import { RoyaltiesBuildMetrics } from './build/royalties-build.metrics';
import { royaltiesBuildProcessorProvider } from './build/royalties-build.processor';
import { RoyaltiesBuildQueueModule } from './build/royalties-build-queue';
import { runRoyaltiesBuildProvider } from './build/run-royalties-build';
import { RoyaltiesConfigModule } from './royalties.config';
import { RoyaltiesRepository } from './storage/royalties.repository';

const repositoryProvider = {
  provide: RoyaltiesRepository,
  inject: [MONGO_DB],
  useFactory: (db: Db) => new RoyaltiesRepository(db),
};

/**
 * What both sides share: the settings, the input policy (checked at boot), the build queue and the
 * repository. Needs the global DatastoresModule, ConfigModule and `BullModule.forRoot`.
 */
@Module({
  imports: [RoyaltiesConfigModule, RoyaltiesBuildQueueModule],
  providers: [repositoryProvider],
  exports: [RoyaltiesConfigModule, RoyaltiesBuildQueueModule, repositoryProvider],
})
class RoyaltiesModule {}

/** The api side: build endpoints and report endpoints. Mount in the api's AppModule. */
@Module({
  imports: [RoyaltiesModule],
  controllers: [RoyaltiesBuildsController, RoyaltiesReportsController],
  providers: [RoyaltiesService, RoyaltiesBuildHealth],
})
export class RoyaltiesApiModule {}

/** The `royalties` worker role: runs builds from the queue. */
@Module({
  imports: [RoyaltiesModule],
  providers: [runRoyaltiesBuildProvider, royaltiesBuildProcessorProvider, RoyaltiesBuildMetrics],
})
export class RoyaltiesWorkerModule {}
