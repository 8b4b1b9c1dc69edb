import { Module, Provider } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Queue } from 'bullmq';
import { Db } from 'mongodb';
import { bullmqConnection, MONGO_DB } from '@bufferq/datastores';
import { royaltiesEnv, royaltiesSettings, RoyaltiesSettings } from './royalties.env';
import { RoyaltiesRepository } from './storage/royalties.repository';
import { BuildJobData, ROYALTIES_QUEUE, ROYALTIES_SETTINGS } from './royalties.tokens';
import { RoyaltiesBuildsController, RoyaltiesReportsController } from './api/royalties.controller';
import { RoyaltiesService } from './api/royalties.service';
import { RunRoyaltiesBuild } from './build/run-royalties-build';
import { RoyaltiesBuildWorker } from './build/royalties-build.worker';

const sharedProviders: Provider[] = [
  {
    provide: ROYALTIES_SETTINGS,
    inject: [ConfigService],
    useFactory: (config: ConfigService) =>
      royaltiesSettings(Object.fromEntries(Object.keys(royaltiesEnv.shape).map((key) => [key, config.get(key)]))),
  },
  { provide: RoyaltiesRepository, inject: [MONGO_DB], useFactory: (db: Db) => new RoyaltiesRepository(db) },
];

/** The api side: build endpoints and report endpoints. Mount in the api's AppModule. */
@Module({
  controllers: [RoyaltiesBuildsController, RoyaltiesReportsController],
  providers: [
    ...sharedProviders,
    {
      provide: ROYALTIES_QUEUE,
      inject: [ROYALTIES_SETTINGS, ConfigService],
      useFactory: (settings: RoyaltiesSettings, config: ConfigService) =>
        new Queue<BuildJobData>(settings.queueName, {
          connection: bullmqConnection(config.getOrThrow<string>('REDIS_URL')),
        }),
    },
    RoyaltiesService,
  ],
})
export class RoyaltiesApiModule {}

/** The `royalties` worker role: runs builds from the queue. */
@Module({
  providers: [
    ...sharedProviders,
    {
      provide: RunRoyaltiesBuild,
      inject: [RoyaltiesRepository, ROYALTIES_SETTINGS],
      useFactory: (repository: RoyaltiesRepository, settings: RoyaltiesSettings) =>
        new RunRoyaltiesBuild(repository, {
          maxBadLineShare: settings.maxBadLineShare,
          streamThreads: settings.streamThreads,
          inputPolicy: settings.inputPolicy,
        }),
    },
    RoyaltiesBuildWorker,
  ],
})
export class RoyaltiesWorkerModule {}
