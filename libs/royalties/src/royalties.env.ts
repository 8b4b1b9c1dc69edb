import { z } from 'zod';

/** Environment variables of the royalties capability; both apps merge this into their validated schema. */
export const royaltiesEnv = z.object({
  /** BullMQ queue the api enqueues builds on and the `royalties` worker role consumes. */
  ROYALTIES_QUEUE: z.string().min(1).default('royalties-builds'),
  /** Default inputs of `POST /royalties/builds` when the body leaves them out (paths or http(s) URLs). */
  ROYALTIES_USERS_CSV: z.string().min(1).optional(),
  ROYALTIES_STREAMS_CSV: z.string().min(1).optional(),
  ROYALTIES_TRACKS: z.string().min(1).optional(),
  /** A build fails when more than this share of an input's data lines is malformed. */
  ROYALTIES_MAX_BAD_LINE_SHARE: z.coerce.number().min(0).max(1).default(0.01),
  /** Threads reading a large local streams file in byte ranges, the worker's own included (1: no extra thread). */
  ROYALTIES_STREAM_THREADS: z.coerce.number().int().min(1).max(16).default(2),
  /** When set, local input paths must resolve inside this directory (the api rejects others with 400). */
  ROYALTIES_INPUT_ROOT: z.string().min(1).optional(),
});

export type RoyaltiesEnv = z.infer<typeof royaltiesEnv>;

/** The settings the royalties providers read, resolved once from the validated environment. */
export interface RoyaltiesSettings {
  queueName: string;
  maxBadLineShare: number;
  streamThreads: number;
  defaultInputs: { usersCsv?: string; streamsCsv?: string; tracks?: string };
  inputRoot?: string;
}

export function royaltiesSettings(env: Partial<RoyaltiesEnv>): RoyaltiesSettings {
  const parsed = royaltiesEnv.parse(env);
  return {
    queueName: parsed.ROYALTIES_QUEUE,
    maxBadLineShare: parsed.ROYALTIES_MAX_BAD_LINE_SHARE,
    streamThreads: parsed.ROYALTIES_STREAM_THREADS,
    defaultInputs: { usersCsv: parsed.ROYALTIES_USERS_CSV, streamsCsv: parsed.ROYALTIES_STREAMS_CSV, tracks: parsed.ROYALTIES_TRACKS },
    inputRoot: parsed.ROYALTIES_INPUT_ROOT,
  };
}
