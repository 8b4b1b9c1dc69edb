import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { PublicEndpoint } from '../access/public-endpoint.decorator';
import { ReadinessIndicators, ReadinessReport } from './readiness.indicators';

@ApiTags('operations')
@PublicEndpoint()
@Controller('health')
export class HealthController {
  constructor(private readonly readiness: ReadinessIndicators) {}

  /** Liveness (`/health/live`, also `/health`): the process serves HTTP. Touches no datastore, so an outage restarts nothing. */
  @Get(['live', ''])
  @ApiOkResponse({ description: 'The process is up' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Readiness: the api can accept writes (Redis answers). MongoDB and the capabilities' checks show in `details` only. */
  @Get('ready')
  @ApiOkResponse({
    description:
      'Redis answers: increments are accepted; `details` also shows MongoDB and each capability check (flush lag, timers, royalties)',
  })
  @ApiServiceUnavailableResponse({ description: 'Redis does not answer: take this replica out of rotation' })
  async ready(): Promise<ReadinessReport> {
    const report = await this.readiness.report();
    if (report.status !== 'ok') throw new ServiceUnavailableException(report);
    return report;
  }
}
