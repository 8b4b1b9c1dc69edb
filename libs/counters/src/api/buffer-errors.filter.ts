import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import { BufferUnavailableError, InvalidUpdateError } from '@bufferq/buffered-increments';

/** Maps the buffer's errors to HTTP: bad input is the client's (400), Redis away is ours (503, retry). */
@Catch(InvalidUpdateError, BufferUnavailableError)
export class BufferErrorsFilter implements ExceptionFilter {
  catch(error: InvalidUpdateError | BufferUnavailableError, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<{ status(code: number): { send(body: unknown): void }; header(name: string, value: string): unknown }>();
    if (error instanceof InvalidUpdateError) {
      reply.status(400).send({ statusCode: 400, message: 'Validation failed', errors: [{ message: error.message }] });
      return;
    }
    reply.header('retry-after', '1');
    reply.status(503).send({ statusCode: 503, message: 'The increment buffer is unavailable; nothing was recorded, retry later' });
  }
}
