import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { BullModule } from '@nestjs/bullmq';
import { LoggerModule } from 'nestjs-pino';
import { validatedEnv } from '@bufferq/config';
import { bullmqConnection, DatastoresModule, redisEndpointFromConfig } from '@bufferq/datastores';
import { LOG_REDACTION, WorkerOperationsModule } from '@bufferq/operations';
import { bullmqTelemetry, logContext } from '@bufferq/telemetry';
import { workerEnv, WorkerEnv } from './config/worker.env';
import { workerRoleModules } from './worker-roles';

@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      cache: true,
      validate: validatedEnv(workerEnv),
    }),
    LoggerModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<WorkerEnv, true>) => ({
        pinoHttp: {
          level: config.get('LOG_LEVEL', { infer: true }),
          redact: LOG_REDACTION,
          mixin: logContext,
        },
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
    WorkerOperationsModule,
    workerRoleModules(),
  ],
})
export class WorkerModule {}
