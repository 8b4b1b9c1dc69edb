import { Controller, Get } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { PublicEndpoint } from '../access/public-endpoint.decorator';
import { ReadinessIndicators } from './readiness.indicators';

@ApiTags('operations')
@PublicEndpoint()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly readiness: ReadinessIndicators,
  ) {}

  /** Liveness: the process serves HTTP. Never touches a datastore, so an outage does not restart pods. */
  @Get()
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Readiness: Redis and MongoDB answer and the flush lag is within bounds (503 otherwise). */
  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.readiness.redisAnswers(), () => this.readiness.mongoAnswers(), () => this.readiness.flushKeepsUp()]);
  }
}
