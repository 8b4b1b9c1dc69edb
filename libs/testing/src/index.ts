// Test support shared by every lib and app: the real services `npm test` started, unique names so test
// files never see each other's data, and private servers for tests that stop or kill them.
import { randomBytes } from 'node:crypto';

const localServices = require('../../../tools/local-services');

export interface LocalServer {
  url: string;
  port: number;
  kind?: string;
  start(): Promise<LocalServer>;
  stop(): Promise<void>;
  kill(): Promise<void>;
  remove(): Promise<void>;
}

/** Connection URLs of the services `npm test` provides (REDIS_URL, MONGO_URL). */
export function testServices(): { redisUrl: string; mongoUrl: string } {
  const redisUrl = process.env.REDIS_URL;
  const mongoUrl = process.env.MONGO_URL;
  if (!redisUrl || !mongoUrl) {
    throw new Error('REDIS_URL and MONGO_URL are not set: run the tests with `npm test`, which starts them');
  }
  return { redisUrl, mongoUrl };
}

/** A name no other test run or test file uses, for databases, collections and key prefixes. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** A private Redis server the test may stop or kill (keeps nothing on disk unless appendOnly). */
export function startPrivateRedis(
  options: { appendOnly?: boolean; appendFsync?: 'always' | 'everysec' | 'no'; port?: number; dataDir?: string } = {},
): Promise<LocalServer> {
  return localServices.startRedis(options);
}

/** A private three-master Redis Cluster (nothing on disk). */
export function startPrivateRedisCluster(): Promise<{ nodes: LocalServer[]; remove(): Promise<unknown> }> {
  return localServices.startRedisCluster();
}

/** A private MongoDB-wire server (mongod when on PATH, else FerretDB) the test may stop or kill. */
export function startPrivateMongo(options: { port?: number; dataDir?: string } = {}): Promise<LocalServer> {
  return localServices.startMongo(options);
}

/** A loopback port free at the time of the call (the kernel picks it from its ephemeral range). */
export function freePort(): Promise<number> {
  return localServices.freePort();
}

/** Polls `probe` until it returns true or the timeout passes; returns whether it became true. */
export async function eventually(probe: () => boolean | Promise<boolean>, timeoutMs = 10_000, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
