import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { BullModule } from '@nestjs/bullmq';
import { validatedEnv } from '@bufferq/config';
import { bullmqConnection, DatastoresModule, redisEndpointFromConfig } from '@bufferq/datastores';
import { AdminCliModule } from '@bufferq/admin-cli';
import { CountersApiModule } from '@bufferq/counters';
import { RoyaltiesApiModule } from '@bufferq/royalties';
import { TimersApiModule } from '@bufferq/timers';
import { cliEnv } from './config/cli.env';

/**
 * The CLI's application: the api's capability modules without HTTP, so the admin commands see the
 * buffered collections and queues the deployment has, on the connections its environment names.
 */
@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, cache: true, validate: validatedEnv(cliEnv) }),
    BullModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService) => ({
        connection: bullmqConnection(redisEndpointFromConfig(config)),
      }),
    }),
    DatastoresModule.forRootFromConfig(),
    CountersApiModule,
    TimersApiModule,
    RoyaltiesApiModule,
    AdminCliModule,
  ],
})
export class CliModule {}
