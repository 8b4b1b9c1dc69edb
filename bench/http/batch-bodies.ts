/** Increments per request of the batch form: the api's most (MAX_INCREMENTS_PER_BATCH). */
export const BATCH = 1_000;

/** Batch bodies of BATCH increments over 100,000 keys, made ahead so the load generator only sends them. */
export const batchBodies: string[] = Array.from({ length: 64 }, (_, body) =>
  JSON.stringify({
    increments: Array.from({ length: BATCH }, (_, i) => ({
      key: `key-${(body * BATCH + i * 7919) % 100_000}`,
      value: 1 + ((body + i) % 9),
    })),
  }),
);
