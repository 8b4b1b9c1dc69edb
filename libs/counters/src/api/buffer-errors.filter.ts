import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import { MongoError } from 'mongodb';
import { BufferUnavailableError, InvalidUpdateError } from '@bufferq/buffered-increments';

type Reply = { status(code: number): { send(body: unknown): void }; header(name: string, value: string): unknown };

/**
 * Maps the buffer's errors to HTTP: bad input is the client's (400); Redis away (nothing was recorded)
 * or MongoDB away during a read is ours (503, retry later). Writes never touch MongoDB.
 */
@Catch(InvalidUpdateError, BufferUnavailableError, MongoError)
export class BufferErrorsFilter implements ExceptionFilter {
  catch(error: InvalidUpdateError | BufferUnavailableError | MongoError, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<Reply>();
    if (error instanceof InvalidUpdateError) {
      reply.status(400).send({ statusCode: 400, message: 'Validation failed', errors: [{ message: error.message }] });
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
