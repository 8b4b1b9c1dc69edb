import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import { MongoError } from 'mongodb';
import {
  BufferFullError,
  BufferUnavailableError,
  InvalidUpdateError,
  MongoCallTimeoutError,
} from '@bufferq/buffered-increments';
import { BUFFER_FULL_RETRY_AFTER_S } from '../counters.constants';

type Reply = { status(code: number): { send(body: unknown): void }; header(name: string, value: string): unknown };

/**
 * Maps the buffer's errors to HTTP: bad input is the client's (400); Redis away (nothing was recorded),
 * the buffer at its limit of fields (increments of keys not yet buffered are refused until flushes catch
 * up) or MongoDB away or unanswering during a read is ours (503, retry later). Writes never touch MongoDB.
 */
@Catch(InvalidUpdateError, BufferUnavailableError, MongoError, MongoCallTimeoutError)
export class BufferErrorsFilter implements ExceptionFilter {
  catch(
    error: InvalidUpdateError | BufferUnavailableError | MongoError | MongoCallTimeoutError,
    host: ArgumentsHost,
  ): void {
    const reply = host.switchToHttp().getResponse<Reply>();
    if (error instanceof InvalidUpdateError) {
      reply.status(400).send({ statusCode: 400, message: 'Validation failed', errors: [{ message: error.message }] });
      return;
    }
    if (error instanceof BufferFullError) {
      // A full buffer empties only as fast as flushes write MongoDB: a retry within the second would fail again.
      reply.header('retry-after', String(BUFFER_FULL_RETRY_AFTER_S));
      reply.status(503).send({
        statusCode: 503,
        message:
          'The increment buffer is full (the counter store is behind); increments of keys not already buffered were not recorded, retry later',
      });
      return;
    }
    reply.header('retry-after', '1');
    const message =
      error instanceof BufferUnavailableError
        ? 'The increment buffer is unavailable; nothing was recorded, retry later'
        : 'The counter store is unavailable; retry the read later';
    reply.status(503).send({ statusCode: 503, message });
  }
}
