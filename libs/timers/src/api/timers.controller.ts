import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import { ZodValidationException } from 'nestjs-zod';
import { TimersService } from '../timers.service';
import { CreateTimerDto, idempotencyKeySchema, ListTimersQueryDto } from './timers.dto';

/** HTTP routes for timers; the api app mounts this through TimersApiModule. */
@Controller('timers')
export class TimersController {
  constructor(private readonly timers: TimersService) {}

  @Post()
  async create(
    @Body() body: CreateTimerDto,
    @Headers('idempotency-key') rawKey: string | undefined,
    @Res({ passthrough: true }) reply: { header(name: string, value: string): unknown },
  ): Promise<{ id: string }> {
    const key = idempotencyKeySchema.safeParse(rawKey);
    if (!key.success) {
      throw new ZodValidationException({
        issues: key.error.issues.map((issue) => ({ ...issue, path: ['Idempotency-Key'] })),
      });
    }
    const { id, created } = await this.timers.create(body, key.data);
    if (!created) reply.header('idempotent-replayed', 'true');
    return { id };
  }

  @Get()
  list(@Query() query: ListTimersQueryDto) {
    return this.timers.list(query);
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.timers.get(id);
  }

  @Delete(':id')
  cancel(@Param('id') id: string) {
    return this.timers.cancel(id);
  }

  @Post(':id/retry')
  @HttpCode(200)
  retry(@Param('id') id: string) {
    return this.timers.retry(id);
  }
}
