import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';

const location = z.string().trim().min(1).max(2048);

/** Body of `POST /royalties/builds`: paths or http(s) URLs; each left out falls back to its ROYALTIES_* default. */
export const startBuildSchema = z.preprocess(
  (body) => body ?? {},
  z.object({ usersCsv: location.optional(), streamsCsv: location.optional(), tracks: location.optional() }).strict(),
);
export class StartBuildDto extends createZodDto(startBuildSchema) {}

const buildId = z
  .string()
  .regex(/^[a-f0-9]{24}$/, 'buildId is a build id returned by POST /royalties/builds')
  .optional();
const limit = z.coerce.number().int().min(1).max(1000).default(100);

/** Which build a report reads: the latest successful one unless `buildId` names another successful build. */
export const reportQuerySchema = z.object({ buildId });
export class ReportQueryDto extends createZodDto(reportQuerySchema) {}

export const usersPageQuerySchema = z.object({ buildId, after: z.string().min(1).optional(), limit });
export class UsersPageQueryDto extends createZodDto(usersPageQuerySchema) {}

export const consolidatedPageQuerySchema = z.object({ buildId, cursor: z.string().min(1).max(200).optional(), limit });
export class ConsolidatedPageQueryDto extends createZodDto(consolidatedPageQuerySchema) {}
