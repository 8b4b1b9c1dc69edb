import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { validatedEnv } from '@bufferq/config';
import { assertDatastoresReachable } from '@bufferq/admin-cli';
import { redisEndpointOf } from '@bufferq/datastores';
import { cliEnv } from './config/cli.env';
import { CliModule } from './cli.module';

/**
 * The CLI's application context, once the environment is valid and both servers answer; quiet, since
 * the commands' output is what a person reads.
 */
export async function createCliContext(): Promise<INestApplicationContext> {
  const env = validatedEnv(cliEnv)(process.env);
  await assertDatastoresReachable({ redis: redisEndpointOf(env), mongoUrl: env.MONGO_URL });
  return NestFactory.createApplicationContext(CliModule, { logger: false, abortOnError: false });
}
