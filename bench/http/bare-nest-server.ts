// The floor of the api's framework for bench:http: NestJS on the Fastify adapter, as apps/api builds it
// (same adapter options), with one controller that echoes the body and answers 202, and nothing else:
// no validation, guards, hooks, logger or datastore.
import 'reflect-metadata';
import { Body, Controller, HttpCode, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';

@Controller('api/v1/increment')
class BareIncrementController {
  @Post()
  @HttpCode(202)
  increment(@Body() body: { key: unknown; value: unknown }): { key: unknown; value: unknown } {
    return { key: body.key, value: body.value };
  }
}

@Module({ controllers: [BareIncrementController] })
class BareModule {}

async function main(): Promise<void> {
  const app = await NestFactory.create<NestFastifyApplication>(
    BareModule,
    new FastifyAdapter({ bodyLimit: 1024 * 1024, trustProxy: true }),
    {
      logger: false,
    },
  );
  app.enableShutdownHooks();
  await app.listen(Number(process.env.PORT), '127.0.0.1');
}

void main();
