// Test support shared by every lib and app: the real services `npm test` started, unique names so test
// files never see each other's data, and private servers for tests that stop or kill them.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { FaultProxy } from './fault-proxy';

const localServices = require('../../../tools/local-services');

export interface LocalServer {
  url: string;
  port: number;
  kind?: string;
  /** Where the server keeps its files; start() after stop() or kill() reuses it. */
  dataDir: string;
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

/** The Redis-protocol servers the tests run on: Redis itself, and Valkey when one is available. */
export type RedisServerKind = 'redis' | 'valkey';

export interface PrivateRedisOptions {
  /** Which server to start; 'redis' unless told. */
  server?: RedisServerKind;
  /** Keep an append-only file in dataDir, so the data survives stop/kill and start. */
  appendOnly?: boolean;
  /** When the AOF is fsynced; only 'always' keeps every acknowledged write through a kill. Default 'everysec'. */
  appendFsync?: 'always' | 'everysec' | 'no';
  /** Start as a replica of the server on this loopback port. */
  replicaOf?: number;
  /** Further server arguments (`['--maxmemory', '10mb']`), passed last so they win. */
  extraArgs?: string[];
  port?: number;
  dataDir?: string;
}

/** A private Redis (or Valkey) server the test may stop or kill (keeps nothing on disk unless appendOnly). */
export function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<LocalServer> {
  return localServices.startRedis(options);
}

/**
 * The shared servers `npm test` started, one per kind: REDIS_URL always, VALKEY_URL when Valkey could be had.
 * For `describe.each(redisServersUnderTest())('on $name', ({ url }) => ...)`, so Redis-facing specs run on both.
 */
export function redisServersUnderTest(): Array<{ name: RedisServerKind; url: string }> {
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) throw new Error('REDIS_URL is not set: run the tests with `npm test`, which starts it');
  const servers: Array<{ name: RedisServerKind; url: string }> = [{ name: 'redis', url: redisUrl }];
  if (process.env.VALKEY_URL) servers.push({ name: 'valkey', url: process.env.VALKEY_URL });
  return servers;
}

/**
 * A private primary and a replica following it, resolved once the replica reports `master_link_status:up`.
 * Both may be stopped, killed and started again; the replica keeps following the primary's port.
 */
export function startPrivateReplicaPair(
  options: Pick<PrivateRedisOptions, 'server' | 'appendOnly' | 'appendFsync' | 'extraArgs'> = {},
): Promise<{ primary: LocalServer; replica: LocalServer }> {
  return localServices.startRedisReplicaPair(options);
}

/** Resolves once the replica's link to its primary is up again, e.g. after restarting either of them. */
export function waitForReplicaLink(replica: LocalServer, timeoutMs = 15_000): Promise<LocalServer> {
  return localServices.waitForReplicaLink(replica, timeoutMs);
}

export interface PrivateRedisCluster {
  nodes: LocalServer[];
  /** The members serving slots now (a promoted replica included, a failed master not). */
  masters(): Array<{ port: number }>;
  remove(): Promise<unknown>;
}

/**
 * A private Redis (or Valkey) Cluster: three masters, and with `replicas: 1` a replica of each. Resolves once
 * all slots are served and every replica is linked; nodes may be killed to provoke a failover.
 */
export function startPrivateRedisCluster(
  options: Pick<PrivateRedisOptions, 'server' | 'appendOnly' | 'appendFsync'> & { replicas?: 0 | 1 } = {},
): Promise<PrivateRedisCluster> {
  return localServices.startRedisCluster(options);
}

/** A Cluster whose nodes announce fault proxies (see proxyClusterNodes). */
export interface ProxiedCluster {
  /** One per node, in `cluster.nodes` order. */
  proxies: FaultProxy[];
  /** Seeds through the proxies, for a client built after the call. */
  seeds: Array<{ host: string; port: number }>;
  /** The nodes announce their own ports again and the proxies stop (once, however often it is called). */
  restore(): Promise<void>;
}

/**
 * Puts a fault proxy in front of every node of a private Cluster and makes each node announce its proxy's
 * port (`cluster-announce-port`), so a Cluster client built afterwards reaches every node through a proxy:
 * slot maps and redirects name the proxies. Resolves once the slot map does.
 */
export async function proxyClusterNodes(cluster: PrivateRedisCluster): Promise<ProxiedCluster> {
  const proxies = await Promise.all(cluster.nodes.map((node) => new FaultProxy(node.port).start()));
  const admins = cluster.nodes.map((node) => new Redis(node.port));
  const announce = (ports: number[]) =>
    Promise.all(admins.map((admin, i) => admin.config('SET', 'cluster-announce-port', String(ports[i]))));
  await announce(proxies.map((proxy) => proxy.port));
  const slotMapNames = async (ports: number[]) => {
    const named = new Set(ports);
    return (await Promise.all(admins.map((admin) => admin.cluster('SLOTS'))))
      .flat()
      .every((range) => named.has(range[2][1]));
  };
  if (!(await eventually(() => slotMapNames(proxies.map((proxy) => proxy.port)), 10_000)))
    throw new Error('the Cluster nodes did not announce their proxies');
  let restored: Promise<void> | undefined;
  const restore = async () => {
    await announce(cluster.nodes.map(() => 0));
    // Until every node's view names the nodes themselves, a new client would still be sent to the proxies.
    await eventually(() => slotMapNames(cluster.nodes.map((node) => node.port)), 10_000);
    await Promise.all(admins.map((admin) => admin.quit()));
    await Promise.all(proxies.map((proxy) => proxy.stop()));
  };
  return {
    proxies,
    seeds: proxies.map((proxy) => ({ host: '127.0.0.1', port: proxy.port })),
    restore: () => (restored ??= restore()),
  };
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
export async function eventually(
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  stepMs = 25,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export { FaultProxy } from './fault-proxy';
export { runTsScript } from './ts-script';
export { writeSyntheticInputs } from './synthetic-royalties-inputs';
export type { SyntheticInputSizes, SyntheticInputs } from './synthetic-royalties-inputs';
export { WebhookReceiver } from './webhook-receiver';
export type { ReceivedRequest, ReceiverBehaviour } from './webhook-receiver';
