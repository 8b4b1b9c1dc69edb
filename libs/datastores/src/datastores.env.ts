import { z } from 'zod';

/** Environment variables for the shared connections; apps merge this into their validated schema. */
export const datastoresEnv = z.object({
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  MONGO_URL: z.string().url().default('mongodb://127.0.0.1:27017'),
  MONGO_DB: z.string().min(1).default('bufferq'),
});
