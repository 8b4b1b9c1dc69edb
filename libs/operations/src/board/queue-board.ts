import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DiscoveryService, HttpAdapterHost } from '@nestjs/core';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter as BoardFastifyAdapter } from '@bull-board/fastify';
import { Queue } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { OPERATIONS_CONFIG, OperationsConfig } from '../operations.config';
import { BoardLoginFailures } from './board-login-failures';
import { systemQueues } from './system-queues';

export const BOARD_PATH = '/admin/queues';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Bull Board at /admin/queues behind HTTP basic auth, showing every BullMQ queue the api knows
 * (`systemQueues`, so a lib that registers a queue appears without touching this file). A
 * client address with too many failed logins gets 429 (BoardLoginFailures); production refuses a
 * published password at boot (BOARD_PASSWORD_SECRET in the env schema).
 */
@Injectable()
export class QueueBoard implements OnModuleInit {
  private readonly logger = new Logger(QueueBoard.name);

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly adapterHost: HttpAdapterHost,
    @Inject(OPERATIONS_CONFIG) private readonly config: OperationsConfig,
    private readonly loginFailures: BoardLoginFailures,
  ) {}

  onModuleInit(): void {
    if (!this.config.BOARD_ENABLED) return;
    const user = this.config.BOARD_USER;
    const password = this.config.BOARD_PASSWORD;
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify?.register) return;
    const readOnlyMode = this.config.BOARD_READ_ONLY;
    const queues = this.queues();
    const serverAdapter = new BoardFastifyAdapter();
    serverAdapter.setBasePath(BOARD_PATH);
    // @bull-board/fastify 9.10.1 pins its own @bull-board/api copy; the adapter contract is the same across 9.10.x.
    createBullBoard({
      queues: queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode })),
      serverAdapter: serverAdapter as never,
    });
    // Bull Board answers 500 with the error's message and stack for what is the client's fault (it
    // JSON-parses text a request sent after a NUL): a bad request is a 400, and no answer shows a stack.
    serverAdapter.setErrorHandler((error: Error) => {
      const declared = (error as Error & { statusCode?: number }).statusCode;
      const status =
        error instanceof SyntaxError || error instanceof TypeError ? 400 : declared && declared < 500 ? declared : 500;
      if (status >= 500) this.logger.error(`Bull Board request failed: ${error.message}`, error.stack);
      return {
        status,
        body: { statusCode: status, message: status >= 500 ? 'Internal server error' : 'Bad request' },
      } as never;
    });
    const expected = digest(`${user}:${password}`);
    void fastify.register(async (scope) => {
      scope.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
        // Refused before the password is compared, so a refused guess tells nothing, right or wrong; and
        // refused while the count cannot be read (Redis away: the board has nothing to show then anyway).
        const refusedForMs = await this.loginFailures.refusedForMs(request.ip).catch(() => undefined);
        if (refusedForMs === undefined) {
          await reply
            .header('retry-after', '1')
            .code(503)
            .send({ statusCode: 503, message: 'Login attempts cannot be counted while Redis is unreachable' });
          return;
        }
        if (refusedForMs > 0) {
          await reply
            .header('retry-after', String(Math.ceil(refusedForMs / 1000)))
            .code(429)
            .send({ statusCode: 429, message: 'Too many failed logins; try again later' });
          return;
        }
        const credentials = basicCredentials(request.headers.authorization);
        if (timingSafeEqual(expected, digest(credentials))) return;
        // A request without credentials is the browser asking for them, not a failed login.
        if (credentials) await this.loginFailures.recordFailure(request.ip).catch(() => undefined);
        await reply
          .header('www-authenticate', 'Basic realm="queues", charset="UTF-8"')
          .code(401)
          .send({ statusCode: 401, message: 'Unauthorized' });
      });
      await scope.register(serverAdapter.registerPlugin() as never, { prefix: BOARD_PATH });
    });
    this.logger.log(
      `Bull Board at ${BOARD_PATH} (${readOnlyMode ? 'read-only' : 'read-write'}): ${queues.map((queue) => queue.name).join(', ')}`,
    );
  }

  private queues(): Queue[] {
    return systemQueues(this.discovery);
  }
}

function basicCredentials(header: string | undefined): string {
  if (!header?.startsWith('Basic ')) return '';
  return Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
}
