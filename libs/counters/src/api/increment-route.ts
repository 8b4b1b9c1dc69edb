import { CanActivate, ExecutionContext, ForbiddenException, HttpException, Logger, Type } from '@nestjs/common';
import type { HttpArgumentsHost, RpcArgumentsHost, WsArgumentsHost } from '@nestjs/common/interfaces';
import { ApplicationConfig } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MongoError } from 'mongodb';
import { isObservable, lastValueFrom } from 'rxjs';
import { BufferUnavailableError, InvalidUpdateError } from '@bufferq/buffered-increments';
import { CountersService } from '../counters.service';
import { BufferErrorsFilter } from './buffer-errors.filter';
import { CountersController } from './counters.controller';
import { parseIncrementRequest } from './counters.dto';

const INCREMENT_PATH = '/api/v1/increment';

/**
 * Serves `POST /api/v1/increment`, the ingest hot path, with a plain Fastify handler in place of the
 * NestJS route handler (the route stays declared by `CountersController`, so OpenAPI, the route label of
 * the latency histogram and Fastify's hooks, body parsing and limits are those of the Nest route).
 *
 * Why: NestJS's per-request pipeline (router proxy, context creation, guard and pipe consumers,
 * interceptor chain, exception zone) costs more CPU than the whole increment does, so the endpoint
 * served about a quarter of what Fastify alone serves. The handler keeps what that pipeline gave the
 * route: the app's global guards run first, in order, on an execution context naming the controller's
 * handler (API keys; rate limits with the same per-client, per-route budgets and headers); the body is
 * validated by the same schema; errors get the same shapes (Nest's HttpException bodies, the
 * BufferErrorsFilter's 400/503s, 500 for anything else).
 *
 * Call it on the app after `NestFactory.create` and before `init()`: it swaps the handler when the
 * router registers the route.
 */
export function serveIncrementRoute(app: NestFastifyApplication): void {
  const fastify: FastifyInstance = app.getHttpAdapter().getInstance();
  let handle: IncrementHandler | undefined;
  fastify.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (route.url !== INCREMENT_PATH || !methods.includes('POST')) return;
    route.handler = (request: FastifyRequest, reply: FastifyReply) => {
      handle ??= incrementHandler(app);
      return handle(request, reply);
    };
  });
}

type IncrementHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<object | undefined>;

function incrementHandler(app: NestFastifyApplication): IncrementHandler {
  const config = app.get(ApplicationConfig);
  // Request-scoped guards are made per request by Nest's router, which this handler does not use.
  if (config.getGlobalRequestGuards().length > 0)
    throw new Error('serveIncrementRoute: request-scoped global guards are not supported');
  const guards: CanActivate[] = config.getGlobalGuards();
  const counters = app.get(CountersService);
  const errors = new BufferErrorsFilter();
  const logger = new Logger('CountersIngest');
  const handler = CountersController.prototype.increment;

  return async (request, reply) => {
    const context = new RouteContext([request, reply], CountersController, handler);
    try {
      for (const guard of guards) {
        const verdict = guard.canActivate(context);
        // A guard's plain `true` (the API-key check) needs no trip through the microtask queue.
        const allowed = verdict === true || (isObservable(verdict) ? await lastValueFrom(verdict) : await verdict);
        if (!allowed) throw new ForbiddenException('Forbidden resource');
      }
      const { increments, batch } = parseIncrementRequest(request.body);
      await counters.increment(increments);
      // Returned, not sent and awaited: Fastify sends an async handler's result without waiting on the reply.
      reply.code(202);
      return batch ? { accepted: increments.length } : increments[0];
    } catch (error) {
      if (
        error instanceof InvalidUpdateError ||
        error instanceof BufferUnavailableError ||
        error instanceof MongoError
      ) {
        errors.catch(error, context);
        return;
      }
      if (error instanceof HttpException) {
        // As Nest's exception filter answers: an object response as it is, else { statusCode, message }.
        const body = error.getResponse();
        await reply
          .code(error.getStatus())
          .send(typeof body === 'object' ? body : { statusCode: error.getStatus(), message: body });
        return;
      }
      logger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
      await reply.code(500).send({ statusCode: 500, message: 'Internal server error' });
    }
  };
}

/** The execution context Nest would build for the controller's route: what guards and filters read. */
class RouteContext implements ExecutionContext {
  constructor(
    private readonly args: [FastifyRequest, FastifyReply],
    private readonly controller: Type,
    private readonly handler: (...args: never[]) => unknown,
  ) {}

  getClass<T = unknown>(): Type<T> {
    return this.controller as Type<T>;
  }

  getHandler(): (...args: never[]) => unknown {
    return this.handler;
  }

  getArgs<T extends unknown[] = unknown[]>(): T {
    return this.args as unknown as T;
  }

  getArgByIndex<T = unknown>(index: number): T {
    return this.args[index] as T;
  }

  getType<T extends string = 'http'>(): T {
    return 'http' as T;
  }

  switchToHttp(): HttpArgumentsHost {
    const [request, reply] = this.args;
    return {
      getRequest: <T>() => request as T,
      getResponse: <T>() => reply as T,
      getNext: <T>() => undefined as T,
    };
  }

  switchToRpc(): RpcArgumentsHost {
    throw new Error('the increment route is HTTP only');
  }

  switchToWs(): WsArgumentsHost {
    throw new Error('the increment route is HTTP only');
  }
}
