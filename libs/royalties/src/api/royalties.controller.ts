import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ConsolidatedPageQueryDto, ReportQueryDto, StartBuildDto, UsersPageQueryDto } from './royalties.dto';
import { RoyaltiesService } from './royalties.service';

@Controller('royalties/builds')
export class RoyaltiesBuildsController {
  constructor(private readonly royalties: RoyaltiesService) {}

  /** Queues a build; poll `GET /royalties/builds/:id` for status, progress, counts and problems. */
  @Post()
  @HttpCode(202)
  start(@Body() body: StartBuildDto) {
    return this.royalties.startBuild(body as never);
  }

  @Get(':id')
  status(@Param('id') id: string) {
    return this.royalties.buildStatus(id);
  }

  @Post(':id/cancel')
  @HttpCode(202)
  cancel(@Param('id') id: string) {
    return this.royalties.cancelBuild(id);
  }
}

/** Results of the latest successful build (or of `?buildId=`). */
@Controller()
export class RoyaltiesReportsController {
  constructor(private readonly royalties: RoyaltiesService) {}

  /** Payout per label in currency units, e.g. `{ "label 1": 5000, "label 2": 3000 }`. */
  @Get('report')
  report(@Query() query: ReportQueryDto) {
    return this.royalties.report(query.buildId);
  }

  @Get('revenue')
  revenue(@Query() query: ReportQueryDto) {
    return this.royalties.revenue(query.buildId);
  }

  @Get('users')
  users(@Query() query: UsersPageQueryDto) {
    return this.royalties.users(query as never);
  }

  @Get('users/:userId')
  user(@Param('userId') userId: string, @Query() query: ReportQueryDto) {
    return this.royalties.user(userId, query.buildId);
  }

  @Get('consolidated')
  consolidated(@Query() query: ConsolidatedPageQueryDto) {
    return this.royalties.consolidated(query as never);
  }
}
