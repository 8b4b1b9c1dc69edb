import { resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_MAX_LINE_BYTES, InputPolicy, locationRefusal, normalizedHost } from './inputs/input-policy';

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

/** The settings the royalties providers read, resolved once from the validated environment. */
export interface RoyaltiesSettings {
  queueName: string;
  maxBadLineShare: number;
  streamThreads: number;
  defaultInputs: { usersCsv?: string; streamsCsv?: string; tracks?: string };
  /** Where inputs may come from and how long their lines may be; the api and the worker read through it. */
  inputPolicy: InputPolicy;
}

/**
 * Resolves the settings once, at boot. A default input (ROYALTIES_USERS_CSV, …) that the input policy
 * refuses stops the boot: it would fail every build that relies on it.
 */
export function royaltiesSettings(env: Partial<RoyaltiesEnv>): RoyaltiesSettings {
  const parsed = royaltiesEnv.parse(env);
  const inputPolicy: InputPolicy = {
    root: parsed.ROYALTIES_INPUT_ROOT ? resolve(parsed.ROYALTIES_INPUT_ROOT) : null,
    privateHosts: parsed.ROYALTIES_ALLOW_PRIVATE_INPUT_HOSTS.split(',')
      .map((host) => normalizedHost(host.trim()))
      .filter(Boolean),
    maxLineBytes: parsed.ROYALTIES_MAX_LINE_BYTES,
  };
  const defaultInputs = {
    usersCsv: parsed.ROYALTIES_USERS_CSV,
    streamsCsv: parsed.ROYALTIES_STREAMS_CSV,
    tracks: parsed.ROYALTIES_TRACKS,
  };
  for (const [name, location] of Object.entries({
    ROYALTIES_USERS_CSV: defaultInputs.usersCsv,
    ROYALTIES_STREAMS_CSV: defaultInputs.streamsCsv,
    ROYALTIES_TRACKS: defaultInputs.tracks,
  })) {
    const refusal = location === undefined ? undefined : locationRefusal(location, inputPolicy);
    if (refusal) throw new Error(`${name}: ${refusal}`);
  }
  return {
    queueName: parsed.ROYALTIES_QUEUE,
    maxBadLineShare: parsed.ROYALTIES_MAX_BAD_LINE_SHARE,
    streamThreads: parsed.ROYALTIES_STREAM_THREADS,
    defaultInputs,
    inputPolicy,
  };
}
