import { z } from 'zod';
import { datastoresEnv } from '@bufferq/datastores';
import { timersEnv } from '@bufferq/timers';
import { royaltiesEnv } from '@bufferq/royalties';
import { countersEnv } from '@bufferq/counters';

/** The variables the CLI reads: the same names and rules as the api and the worker, so it finds what they use. */
export const cliEnv = datastoresEnv.extend({
  ...timersEnv.shape,
  ...royaltiesEnv.shape,
  ...countersEnv.shape,
});

export type CliEnv = z.infer<typeof cliEnv>;
