// Builds the api and worker apps exactly as production does, each with its own environment. The app
// modules read the environment when they are imported, so every build re-imports them afresh.
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { INestApplicationContext } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { PrivateRedisCluster, testServices } from '@bufferq/testing';

const OVERRIDABLE = [
  'API_KEYS',
  'RATE_LIMIT_MAX',
  'RATE_LIMIT_WINDOW_MS',
  'READY_MAX_FLUSH_LAG_MS',
  'BOARD_ENABLED',
  'BOARD_USER',
  'BOARD_PASSWORD',
  'BOARD_READ_ONLY',
  'BOARD_LOGIN_MAX_FAILURES',
  'BOARD_LOGIN_WINDOW_MS',
  'TRUST_PROXY',
  'TIMERS_SIGNING_SECRET',
  'NODE_ENV',
  'COUNTERS_FLUSH_INTERVAL_MS',
  'COUNTERS_FLUSH_JOB_LOCK_MS',
  'COUNTERS_WAIT_FOR_REPLICAS',
  'COUNTERS_LINGER_MS',
  'REDIS_REPLY_TIMEOUT_MS',
  'REDIS_CLUSTER_NODES',
  'TIMERS_ALLOW_PRIVATE_TARGETS',
  'TIMERS_SCHEDULER_POLL_MS',
  'TIMERS_DELIVERY_WARMUP_POSTS',
  'ROYALTIES_INPUT_ROOT',
];

// Read once: the builds below overwrite REDIS_URL / MONGO_URL in process.env (e.g. with a private server).
const services = testServices();

function useEnvironment(dbName: string, env: Record<string, string>): void {
  const { redisUrl, mongoUrl } = services;
  for (const name of OVERRIDABLE) delete process.env[name];
  Object.assign(
    process.env,
    {
      REDIS_URL: redisUrl,
      MONGO_URL: mongoUrl,
      MONGO_DB: dbName,
      LOG_LEVEL: 'silent',
      WORKER_ROLES: 'flush',
      // Workers built side by side (and other test runs) each serve /metrics on a port of their own.
      METRICS_PORT: '0',
      // The default 10,000 warm-up POSTs cost every worker a second of CPU the tests do not need.
      TIMERS_DELIVERY_WARMUP_POSTS: '100',
    },
    env,
  );
  jest.resetModules();
}

export async function startApi(dbName: string, env: Record<string, string> = {}): Promise<NestFastifyApplication> {
  useEnvironment(dbName, env);
  const { createApiApp } = await import('../src/api-app');
  return createApiApp();
}

/**
 * The api's main.ts / the worker's main.ts in a child process (ts-node), for tests that SIGKILL them;
 * `stdout: 'pipe'` to read its log lines.
 */
export function spawnApp(
  app: 'api' | 'worker',
  env: Record<string, string>,
  options: { stdout?: 'inherit' | 'pipe' } = {},
): ChildProcess {
  const root = join(__dirname, '..', '..', '..');
  return spawn(
    process.execPath,
    [
      '-r',
      'ts-node/register/transpile-only',
      '-r',
      'tsconfig-paths/register',
      join(root, 'apps', app, 'src', 'main.ts'),
    ],
    {
      cwd: root,
      stdio: ['ignore', options.stdout ?? 'inherit', 'inherit'],
      env: {
        ...process.env,
        LOG_LEVEL: 'warn',
        WORKER_ROLES: 'flush',
        METRICS_PORT: '0',
        TIMERS_DELIVERY_WARMUP_POSTS: '100',
        ...env,
        TS_NODE_PROJECT: join(root, 'tsconfig.json'),
      },
    },
  );
}

export async function startWorker(dbName: string, env: Record<string, string> = {}): Promise<INestApplicationContext> {
  useEnvironment(dbName, env);
  const { createWorkerApp } = await import('../../worker/src/worker-app');
  const worker = await createWorkerApp();
  await worker.init();
  return worker;
}

/** The environment that points the apps at a private Redis Cluster (REDIS_URL then goes unused). */
export function clusterEnvironment(cluster: PrivateRedisCluster): Record<string, string> {
  return {
    REDIS_URL: 'redis://127.0.0.1:1',
    REDIS_CLUSTER_NODES: cluster.nodes.map((node) => `127.0.0.1:${node.port}`).join(','),
  };
}
