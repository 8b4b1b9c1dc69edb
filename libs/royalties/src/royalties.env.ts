import { z } from 'zod';
import { DEFAULT_MAX_LINE_BYTES } from './inputs/input-policy';

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
  /** Local input paths must resolve (symlinks followed) inside this directory; unset: local paths are refused. */
  ROYALTIES_INPUT_ROOT: z.string().min(1).optional(),
  /**
   * Comma-separated hosts (names or IP addresses, as written in input URLs) that may be on loopback,
   * private or link-local addresses; `*`: any. Empty (default): every input URL must reach a public address.
   */
  ROYALTIES_ALLOW_PRIVATE_INPUT_HOSTS: z.string().default(''),
  /** Longest line of a CSV input, and longest key or value of the track metadata, in bytes. */
  ROYALTIES_MAX_LINE_BYTES: z.coerce
    .number()
    .int()
    .min(64)
    .max(64 * 1024 * 1024)
    .default(DEFAULT_MAX_LINE_BYTES),
});

export type RoyaltiesEnv = z.infer<typeof royaltiesEnv>;
