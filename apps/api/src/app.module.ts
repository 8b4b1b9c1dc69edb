import { Module, RequestMethod } from '@nestjs/common';
import { APP_PIPE } from '@nestjs/core';
import { ZodValidationPipe } from 'nestjs-zod';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { BullModule } from '@nestjs/bullmq';
import { LoggerModule } from 'nestjs-pino';
import { validatedEnv } from '@bufferq/config';
import { bullmqConnection, DatastoresModule, redisEndpointFromConfig } from '@bufferq/datastores';
import { apiEnv, ApiEnv } from './config/api.env';
import { TimersApiModule } from '@bufferq/timers';
import { RoyaltiesApiModule } from '@bufferq/royalties';
import { CountersApiModule } from '@bufferq/counters';
import { LOG_REDACTION, OperationsModule, requestIdOf } from '@bufferq/operations';
import { bullmqTelemetry, logContext } from '@bufferq/telemetry';

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, cache: true, validate: validatedEnv(apiEnv) }),
    LoggerModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<ApiEnv, true>) => ({
        pinoHttp: {
          level: config.get('LOG_LEVEL', { infer: true }),
          autoLogging: false,
          genReqId: requestIdOf,
          redact: LOG_REDACTION,
          mixin: logContext,
        },
        // The ingest hot path logs nothing per request (autoLogging is off; its errors go through the app
        // logger): a request logger per increment (child logger, redaction, async context) would cost
        // more CPU than the increment itself.
        exclude: [{ method: RequestMethod.POST, path: 'api/v1/increment' }],
      }),
    }),
    BullModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService) => ({
        connection: bullmqConnection(redisEndpointFromConfig(config)),
        telemetry: bullmqTelemetry(),
      }),
    }),
    DatastoresModule.forRootFromConfig(),
    TimersApiModule,
    RoyaltiesApiModule,
    CountersApiModule,
    OperationsModule,
  ],
  // Every DTO made with nestjs-zod's createZodDto is validated; a bad body is a 400 naming the field.
  providers: [{ provide: APP_PIPE, useClass: ZodValidationPipe }],
})
export class AppModule {}
