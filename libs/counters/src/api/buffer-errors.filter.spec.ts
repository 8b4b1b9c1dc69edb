import type { ArgumentsHost } from '@nestjs/common';
import { FILTER_CATCH_EXCEPTIONS } from '@nestjs/common/constants';
import { MongoNetworkError } from 'mongodb';
import {
  BufferFullError,
  BufferUnavailableError,
  InvalidUpdateError,
  MongoCallTimeoutError,
} from '@bufferq/buffered-increments';
import { BufferErrorsFilter } from './buffer-errors.filter';

/** What the filter answered: status, retry-after and body; only for an error Nest hands it (its @Catch). */
function answer(error: Error): { status?: number; retryAfter?: string; body?: { message: string } } {
  const caught = Reflect.getMetadata(FILTER_CATCH_EXCEPTIONS, BufferErrorsFilter) as Array<new () => Error>;
  if (!caught.some((type) => error instanceof type)) return {};
  const sent: { status?: number; retryAfter?: string; body?: { message: string } } = {};
  const reply = {
    status: (code: number) => {
      sent.status = code;
      return { send: (body: { message: string }) => (sent.body = body) };
    },
    header: (name: string, value: string) => {
      if (name === 'retry-after') sent.retryAfter = value;
    },
  };
  const host = { switchToHttp: () => ({ getResponse: () => reply }) } as unknown as ArgumentsHost;
  new BufferErrorsFilter().catch(error as never, host);
  return sent;
}

describe('BufferErrorsFilter', () => {
  it('answers bad input with 400', () => {
    expect(answer(new InvalidUpdateError('n: not a number')).status).toBe(400);
  });

  it('answers a full buffer with 503 and a longer retry-after than Redis away', () => {
    const full = answer(new BufferFullError('full'));
    const away = answer(new BufferUnavailableError('away'));
    expect([full.status, away.status]).toEqual([503, 503]);
    expect(Number(full.retryAfter)).toBeGreaterThan(Number(away.retryAfter));
  });

  it.each([
    ['MongoDB away', new MongoNetworkError('connection refused')],
    ['MongoDB not answering a read in time', new MongoCallTimeoutError('no answer within 30000 ms')],
  ])('answers %s with 503, retry the read later', (_case, error) => {
    expect(answer(error)).toMatchObject({ status: 503, retryAfter: '1', body: { message: /retry the read later/ } });
  });
});
