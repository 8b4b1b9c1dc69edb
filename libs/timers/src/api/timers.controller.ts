import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ZodValidationException } from 'nestjs-zod';
import { TenantId } from '../timer';
import { TimersService } from '../timers.service';
import { Tenant } from './tenant.decorator';
import { CreateTimerDto, idempotencyKeySchema, ListTimersQueryDto } from './timers.dto';

/**
 * HTTP routes for timers; the api app mounts this through TimersApiModule. Each route acts for the
 * caller's tenant (its API key, see `Tenant`): another tenant's timer answers 404.
 */
@Controller('timers')
export class TimersController {
  constructor(private readonly timers: TimersService) {}

  @Post()
  async create(
    @Body() body: CreateTimerDto,
    @Headers('idempotency-key') rawKey: string | undefined,
    @Tenant() tenant: TenantId,
    @Res({ passthrough: true }) reply: { header(name: string, value: string): unknown },
  ): Promise<{ id: string }> {
    const key = idempotencyKeySchema.safeParse(rawKey);
    if (!key.success) {
      throw new ZodValidationException({
        issues: key.error.issues.map((issue) => ({ ...issue, path: ['Idempotency-Key'] })),
      });
    }
    const { id, created } = await this.timers.create(body, { tenant, idempotencyKey: key.data });
    if (!created) reply.header('idempotent-replayed', 'true');
    return { id };
  }

  @Get()
  list(@Query() query: ListTimersQueryDto, @Tenant() tenant: TenantId) {
    return this.timers.list({ ...query, tenant });
  }

  @Get(':id')
  get(@Param('id') id: string, @Tenant() tenant: TenantId) {
    return this.timers.get(id, tenant);
  }

  @Delete(':id')
  cancel(@Param('id') id: string, @Tenant() tenant: TenantId) {
    return this.timers.cancel(id, tenant);
  }

  @Post(':id/retry')
  @HttpCode(200)
  retry(@Param('id') id: string, @Tenant() tenant: TenantId) {
    return this.timers.retry(id, tenant);
  }
}
