import { Body, Controller, Get, Header, HttpCode, Param, Post, UseFilters } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBody,
  ApiExtraModels,
  ApiOkResponse,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import { CountersService } from '../counters.service';
import { BufferErrorsFilter } from './buffer-errors.filter';
import { CounterKeyParamsDto, IncrementBatchDto, IncrementDto, parseIncrementRequest } from './counters.dto';

/** `POST /api/v1/increment` and `GET /api/v1/increment/:key`. */
@ApiTags('counters')
@ApiExtraModels(IncrementDto, IncrementBatchDto)
@UseFilters(BufferErrorsFilter)
@Controller('api/v1/increment')
export class CountersController {
  constructor(private readonly counters: CountersService) {}

  @Post()
  @HttpCode(202)
  @ApiBody({ schema: { oneOf: [{ $ref: getSchemaPath(IncrementDto) }, { $ref: getSchemaPath(IncrementBatchDto) }] } })
  @ApiAcceptedResponse({ description: 'Durable in Redis: `{ key, value }`, or `{ accepted }` for a batch' })
  @ApiBadRequestResponse({ description: 'A field is missing or invalid; `errors[].path` names it' })
  async increment(@Body() body: unknown): Promise<IncrementDto | { accepted: number }> {
    const { increments, batch } = parseIncrementRequest(body);
    await this.counters.increment(increments);
    return batch ? { accepted: increments.length } : increments[0];
  }

  @Get(':key')
  @Header('content-type', 'application/json; charset=utf-8')
  @ApiOkResponse({
    description:
      '`{ key, value }`: MongoDB value plus still-buffered increments; 0 for an unknown key. `value` is exact to 64 bits (its JSON digits; JavaScript clients round past 2^53)',
  })
  async read(@Param() { key }: CounterKeyParamsDto): Promise<string> {
    const value = await this.counters.read(key);
    // Written by hand: JSON.stringify knows no bigint, and a number would round a counter past 2^53.
    return `{"key":${JSON.stringify(key)},"value":${value.toString()}}`;
  }
}
