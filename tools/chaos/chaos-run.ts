// npm run chaos [-- --duration 180 --seed 42 --json result.json --documents 200 --rate 100]
//
// Runs the whole buffered-increments system on this machine (its own Redis with AOF fsync always, its
// own MongoDB-wire server, 4 producer and 3 worker processes, everything Redis-bound through a fault
// proxy), injects faults for --duration seconds, drains, and checks MongoDB against what producers saw
// acknowledged: exit code 0 only when nothing acknowledged was lost and nothing was applied twice.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { BufferedMongoIncrements, FLUSH_QUEUE } from '@bufferq/buffered-increments';
import { bullmqConnection } from '@bufferq/datastores';
import { sleep } from '@bufferq/testing';
import { ChaosChild } from './child-process';
import { ChaosSystem } from './chaos-system';
import { FaultCounts, FaultPlan, FaultTimeline, noFaults, planFaults } from './fault-plan';
import { auditLedger, StoredDocument } from './ledger';
import { SeededRandom } from './random';
import { chaosResult, DrainOutcome, FlushQueueReport, formatReport } from './report';
import { BUFFERS, COLLECTIONS } from './topology';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '180' },
    seed: { type: 'string' },
    json: { type: 'string' },
    documents: { type: 'string', default: '200' },
    rate: { type: 'string', default: '100' },
  },
});
const DURATION_MS = Number(args.duration) * 1000;
const SEED = args.seed !== undefined ? Number(args.seed) : Date.now() % 1_000_000;
const DOCUMENTS = Number(args.documents);
/** Updates per second per producer: moderate, so FerretDB keeps up and the final drain takes seconds. */
const UPDATES_PER_SECOND = Number(args.rate);
for (const [flag, value] of Object.entries({
  duration: DURATION_MS,
  seed: SEED,
  documents: DOCUMENTS,
  rate: UPDATES_PER_SECOND,
})) {
  if (!Number.isFinite(value) || value < 0 || (flag !== 'seed' && value === 0))
    throw new Error(`--${flag} must be a positive number`);
}

const PRODUCERS = 4;
const WORKERS = 3;
const DB_NAME = 'chaos';
const KEY_PREFIX = 'bmi'; // the library's default: producers and workers do not set one
const MEAN_CUT_INTERVAL_MS = 1_000;
const MEAN_DROP_INTERVAL_MS = 1_500;
const BOOT_TIMEOUT_MS = 120_000;
const DRAIN_TIMEOUT_MS = 120_000;
/** The drain gives up early when the buffered field count has not fallen for this long with every worker up. */
const DRAIN_STALL_MS = 30_000;

const startedAt = Date.now();
function log(message: string): void {
  process.stderr.write(`[chaos ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
}

async function main(): Promise<number> {
  const random = new SeededRandom(SEED);
  const plan = planFaults(random, DURATION_MS, WORKERS);
  const logDir = mkdtempSync(join(tmpdir(), `bufferq-chaos-${SEED}-`));
  log(
    `seed ${SEED}, ${DURATION_MS / 1000} s, ${PRODUCERS} producers x ${UPDATES_PER_SECOND} updates/s, ${WORKERS} workers, ${DOCUMENTS} documents per collection; logs in ${logDir}`,
  );
  log(
    `plan: ${plan.workerKills.length} worker kills, Redis restart at ${(plan.redisRestart.atMs / 1000).toFixed(1)} s, MongoDB stop at ${(plan.mongoStop.atMs / 1000).toFixed(1)} s`,
  );

  const system = new ChaosSystem(
    {
      producers: PRODUCERS,
      workers: WORKERS,
      documents: DOCUMENTS,
      updatesPerSecond: UPDATES_PER_SECOND,
      maxInFlight: 32,
      dbName: DB_NAME,
      logDir,
    },
    random,
  );
  // Interrupted (Ctrl-C, a test timeout): the servers and children must not outlive the run.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping everything`);
      void system.tearDown().finally(() => process.exit(130));
    });
  }
  try {
    await withTimeout(system.start(), BOOT_TIMEOUT_MS, 'producers and workers did not start');
    log(
      `Redis ${system.redis.url} (through proxy ${system.proxy.url}), MongoDB-wire ${system.mongo.kind} ${system.mongo.url}; every process ready: faults start`,
    );
    const faults = await runFaults(system, plan, new SeededRandom(random.derive(100).seed));
    log(`faults stopped (${faults.connectionCuts} cuts, ${faults.droppedReplies} dropped replies); stopping producers`);

    const ledger = await system.stopProducers();
    const redis = system.directRedis();
    const mongo = system.directMongo();
    const drain = await drainBuffers(redis, mongo, system.workers);
    const flushQueue = await readFlushQueue(system.redis.url);
    if (!drain.drained) log(`flush queue: ${JSON.stringify(flushQueue.state)}`);
    await system.stopWorkers();
    faults.workerBootFailures = system.workerBootFailures;

    const deadLetters = await readDeadLetters(redis);
    const audit = auditLedger(ledger, await readDocuments(mongo), deadLetters.documents);
    const run = { seed: SEED, durationS: DURATION_MS / 1000, documents: DOCUMENTS, logDir };
    const result = chaosResult(run, ledger, audit, drain, deadLetters.count, faults, flushQueue);
    process.stdout.write(formatReport(result));
    if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 2));
    // The processes' logs are kept only when they may explain a failure.
    if (result.ok) rmSync(logDir, { recursive: true, force: true });
    return result.ok ? 0 : 1;
  } finally {
    await system.tearDown();
  }
}

/** Injects every fault for the run's duration; returns once they are over and both servers are up. */
async function runFaults(system: ChaosSystem, plan: FaultPlan, network: SeededRandom): Promise<FaultCounts> {
  const faults = noFaults();
  const timeline = new FaultTimeline((error) => log(`fault failed: ${error instanceof Error ? error.message : error}`));
  system.proxy.startChaos({
    random: () => network.next(),
    meanCutIntervalMs: MEAN_CUT_INTERVAL_MS,
    meanDropIntervalMs: MEAN_DROP_INTERVAL_MS,
  });
  for (const { atMs, worker } of plan.workerKills) {
    timeline.at(atMs, async () => {
      if (!system.workers[worker].alive) return; // between its last death and its restart
      await system.workers[worker].kill();
      faults.workerKills += 1;
      log(`worker ${worker} killed`);
    });
  }
  timeline.at(plan.redisRestart.atMs, async () => {
    await system.redis.kill();
    log(`Redis killed; back in ${Math.round(plan.redisRestart.downMs)} ms`);
    await sleep(plan.redisRestart.downMs);
    await system.redis.start();
    faults.redisRestarts += 1;
    log('Redis started again (same port, same AOF)');
  });
  timeline.at(plan.mongoStop.atMs, async () => {
    await system.mongo.stop();
    log(`MongoDB stopped for ${plan.mongoStop.downMs / 1000} s`);
    await sleep(plan.mongoStop.downMs);
    await system.mongo.start();
    faults.mongoStops += 1;
    log('MongoDB started again');
  });
  await sleep(DURATION_MS);
  await timeline.stop();
  return Object.assign(faults, system.proxy.stopChaos());
}

/**
 * Waits until no namespace holds buffered fields (live or draining), with every worker kept running.
 * A worker killed mid-flush holds its job and the buffer's lock until they lapse, so this takes a few
 * lock periods at most when flushing works.
 */
async function drainBuffers(redis: Redis, mongo: MongoClient, workers: ChaosChild[]): Promise<DrainOutcome> {
  const began = Date.now();
  // Only stats() is called on these: they read the namespace's keys in Redis, they never flush.
  const buffers = BUFFERS.map(
    (target) =>
      new BufferedMongoIncrements(mongo.db(DB_NAME).collection(target.collection), redis, 1_000, {
        namespace: target.namespace,
        keyPrefix: KEY_PREFIX,
        autoFlush: false,
      }),
  );
  let undrained: Record<string, number> = {};
  let lastLog = 0;
  let fewest = Infinity;
  let progressAt = Date.now();
  while (Date.now() - began < DRAIN_TIMEOUT_MS) {
    const stats = await Promise.all(buffers.map((buffer) => buffer.stats()));
    undrained = Object.fromEntries(
      buffers.map((buffer, i) => [buffer.namespace, stats[i].bufferedFields]).filter(([, fields]) => fields !== 0),
    );
    if (Object.keys(undrained).length === 0) {
      log(`drained in ${((Date.now() - began) / 1000).toFixed(1)} s`);
      return { drained: true, undrained, ms: Date.now() - began };
    }
    const total = stats.reduce((sum, stat) => sum + stat.bufferedFields, 0);
    if (total < fewest || !workers.every((worker) => worker.ready)) {
      fewest = Math.min(fewest, total);
      progressAt = Date.now();
    } else if (Date.now() - progressAt > DRAIN_STALL_MS) {
      log(`NOT drained: no progress for ${DRAIN_STALL_MS / 1000} s with every worker up: ${JSON.stringify(undrained)}`);
      return { drained: false, undrained, ms: Date.now() - began };
    }
    if (Date.now() - lastLog > 5_000) {
      lastLog = Date.now();
      log(
        `draining: ${JSON.stringify(undrained)} buffered fields; workers ready: ${workers.filter((worker) => worker.ready).length}/${workers.length}`,
      );
    }
    await sleep(250);
  }
  log(`NOT drained after ${DRAIN_TIMEOUT_MS / 1000} s: ${JSON.stringify(undrained)}`);
  return { drained: false, undrained, ms: Date.now() - began };
}

/** Dead letters of every namespace (the documented list `<prefix>:{<namespace>}:dead-letters`). */
async function readDeadLetters(redis: Redis): Promise<{ count: number; documents: Set<string> }> {
  const documents = new Set<string>();
  let count = 0;
  for (const target of BUFFERS) {
    const letters = await redis.lrange(`${KEY_PREFIX}:{${target.namespace}}:dead-letters`, 0, -1);
    count += letters.length;
    for (const letter of letters)
      documents.add(`${target.collection}|${String((JSON.parse(letter) as { documentId: unknown }).documentId)}`);
  }
  return { count, documents };
}

/**
 * The flush queue as BullMQ holds it after the drain: why jobs failed (the last 500 failed jobs are
 * kept) and where jobs wait. A flush that fails throws inside a worker, and a queue that stopped
 * handing out jobs shows nothing anywhere else, so without this a run that stopped flushing would not
 * say why. Read right after the drain, while the workers still run.
 */
async function readFlushQueue(redisUrl: string): Promise<FlushQueueReport> {
  const queue = new Queue(FLUSH_QUEUE, { connection: bullmqConnection(redisUrl) });
  try {
    const failures: Record<string, number> = {};
    for (const job of await queue.getFailed(0, -1)) {
      const reason = (job?.failedReason ?? 'unknown').slice(0, 200);
      failures[reason] = (failures[reason] ?? 0) + 1;
    }
    const counts = await queue.getJobCounts('active', 'waiting', 'prioritized', 'delayed', 'completed', 'failed');
    const active = (await queue.getActive()).map((job) => ({
      id: job.id,
      collection: (job.data as { collection?: string })?.collection,
      attemptsMade: job.attemptsMade,
      activeForMs: job.processedOn ? Date.now() - job.processedOn : undefined,
    }));
    return {
      failures,
      state: {
        counts,
        globalConcurrency: await queue.getGlobalConcurrency(),
        active,
        schedulers: await queue.getJobSchedulersCount(),
      },
    };
  } finally {
    await queue.close();
  }
}

async function readDocuments(mongo: MongoClient): Promise<Map<string, StoredDocument[]>> {
  const documents = new Map<string, StoredDocument[]>();
  for (const collection of COLLECTIONS)
    documents.set(collection, await mongo.db(DB_NAME).collection<StoredDocument>(collection).find({}).toArray());
  return documents;
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
  ]).finally(() => clearTimeout(timer));
}

main().then(
  (code) => process.exit(code),
  (error) => {
    log(`run failed: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
    process.exit(2);
  },
);
