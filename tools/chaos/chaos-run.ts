// npm run chaos [-- --duration 180 --seed 42 --json result.json --documents 200 --rate 100]
//
// Runs the whole buffered-increments system on this machine (its own Redis with AOF fsync always, its
// own MongoDB-wire server, 4 producer and 3 worker processes, everything Redis-bound through a fault
// proxy), injects faults for --duration seconds, drains, and checks MongoDB against what producers saw
// acknowledged: exit code 0 only when nothing acknowledged was lost and nothing was applied twice.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { BufferedMongoIncrements } from '@bufferq/buffered-increments';
import { FaultProxy, LocalServer, sleep, startPrivateMongo, startPrivateRedis } from '@bufferq/testing';
import { ChaosChild } from './child-process';
import { Audit, auditLedger, LedgerData, mergeLedgers, StoredDocument } from './ledger';
import { SeededRandom } from './random';
import { BUFFERS, COLLECTIONS, ProducerConfig, WorkerConfig } from './topology';

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

const PRODUCERS = 4;
const WORKERS = 3;
const MAX_IN_FLIGHT = 32;
const DB_NAME = 'chaos';
const KEY_PREFIX = 'bmi'; // the library's default: producers and workers do not set one
const WORKER_KILL_EVERY_MS: [number, number] = [2_000, 5_000];
const WORKER_RESTART_DELAY_MS = 300;
const REDIS_DOWN_MS: [number, number] = [500, 2_000];
const MONGO_DOWN_MS = 10_000;
const MEAN_CUT_INTERVAL_MS = 1_000;
const MEAN_DROP_INTERVAL_MS = 1_500;
const DRAIN_TIMEOUT_MS = 120_000;
/** The drain gives up early when the buffered field count has not fallen for this long with every worker up. */
const DRAIN_STALL_MS = 30_000;
const BOOT_TIMEOUT_MS = 120_000;

interface FaultPlan {
  workerKills: Array<{ atMs: number; worker: number }>;
  redisRestart: { atMs: number; downMs: number };
  mongoStop: { atMs: number; downMs: number };
}

interface FaultCounts {
  workerKills: number;
  workerBootFailures: number;
  redisRestarts: number;
  mongoStops: number;
  connectionCuts: number;
  droppedReplies: number;
}

export interface ChaosResult {
  seed: number;
  durationS: number;
  documents: number;
  updates: LedgerData['counts'];
  acknowledged: number;
  ambiguous: number;
  refused: number;
  inc: Audit['inc'];
  max: Audit['max'];
  set: Audit['set'];
  unexpectedFields: number;
  /** $inc units plus $max and $set fields: zero exactly when no acknowledged update went missing. */
  lost: number;
  /** $inc units applied beyond acknowledged + ambiguous. */
  doubled: number;
  /** $max / $set fields holding a value no acknowledged or ambiguous update sent, plus unexpected fields. */
  wrong: number;
  deadLetters: number;
  drained: boolean;
  undrainedFields: Record<string, number>;
  drainMs: number;
  faults: FaultCounts;
  problems: string[];
  logDir: string;
  ok: boolean;
}

const startedAt = Date.now();
function log(message: string): void {
  process.stderr.write(`[chaos ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
}

/** Every fault but the network ones is drawn up front from the seed, so a run can be replayed. */
function planFaults(random: SeededRandom, durationMs: number): FaultPlan {
  const workerKills: FaultPlan['workerKills'] = [];
  for (let at = random.between(...WORKER_KILL_EVERY_MS); at < durationMs; at += random.between(...WORKER_KILL_EVERY_MS)) {
    workerKills.push({ atMs: at, worker: random.int(0, WORKERS - 1) });
  }
  // Redis restarts in the first half and MongoDB stops in the second, each early enough to end in the run.
  const redisRestart = { atMs: random.between(0.15, 0.35) * durationMs, downMs: random.between(...REDIS_DOWN_MS) };
  const mongoFrom = 0.45 * durationMs;
  const mongoStop = { atMs: random.between(mongoFrom, Math.max(mongoFrom, durationMs - MONGO_DOWN_MS - 2_000)), downMs: MONGO_DOWN_MS };
  return { workerKills, redisRestart, mongoStop };
}

/** Runs the plan's faults at their times; `stop` cancels what has not started and waits for what has. */
class FaultTimeline {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<Promise<void>>();

  at(atMs: number, fault: () => Promise<void>): void {
    this.timers.push(
      setTimeout(() => {
        const run = fault()
          .catch((error) => log(`fault failed: ${error instanceof Error ? error.message : error}`))
          .finally(() => this.running.delete(run));
        this.running.add(run);
      }, atMs),
    );
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    await Promise.all([...this.running]);
  }
}

async function main(): Promise<number> {
  const random = new SeededRandom(SEED);
  const plan = planFaults(random, DURATION_MS);
  const logDir = mkdtempSync(join(tmpdir(), `bufferq-chaos-${SEED}-`));
  log(`seed ${SEED}, ${DURATION_MS / 1000} s, ${PRODUCERS} producers x ${UPDATES_PER_SECOND} updates/s, ${WORKERS} workers, ${DOCUMENTS} documents per collection; logs in ${logDir}`);
  log(`plan: ${plan.workerKills.length} worker kills, Redis restart at ${(plan.redisRestart.atMs / 1000).toFixed(1)} s, MongoDB stop at ${(plan.mongoStop.atMs / 1000).toFixed(1)} s`);

  const faults: FaultCounts = { workerKills: 0, workerBootFailures: 0, redisRestarts: 0, mongoStops: 0, connectionCuts: 0, droppedReplies: 0 };
  const servers: LocalServer[] = [];
  const children: ChaosChild[] = [];
  const clients: Array<{ close(): Promise<unknown> }> = [];
  let proxy: FaultProxy | undefined;
  const cleanup = async () => {
    await Promise.allSettled(children.map((child) => child.kill()));
    await Promise.allSettled(clients.map((client) => client.close()));
    await proxy?.stop();
    await Promise.allSettled(servers.map((server) => server.remove()));
  };
  // Interrupted (Ctrl-C, a test timeout): the servers and children must not outlive the run.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping everything`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    // Redis acknowledges a write only once it is fsynced, so the restart cannot lose what a producer saw acknowledged.
    const redis = await startPrivateRedis({ appendOnly: true, appendFsync: 'always' });
    servers.push(redis);
    const mongo = await startPrivateMongo();
    servers.push(mongo);
    proxy = await new FaultProxy(redis.port).start();
    log(`Redis ${redis.url} (through proxy ${proxy.url}), MongoDB-wire ${mongo.kind} ${mongo.url}`);

    let keepWorkersRunning = true;
    const restartWorker = (worker: ChaosChild, signal: NodeJS.Signals | null) => {
      if (!keepWorkersRunning) return;
      if (signal !== 'SIGKILL') faults.workerBootFailures += 1;
      setTimeout(() => {
        if (keepWorkersRunning && !worker.alive) worker.start().catch(() => undefined); // a failed boot exits and comes back here
      }, WORKER_RESTART_DELAY_MS);
    };
    const workers = Array.from({ length: WORKERS }, (_, index) => {
      const config: WorkerConfig = { index, redisUrl: proxy!.url, mongoUrl: mongo.url, dbName: DB_NAME };
      return new ChaosChild(`worker ${index}`, 'worker.ts', config, join(logDir, `worker-${index}.log`), (child, _code, signal) =>
        restartWorker(child, signal),
      );
    });
    const producers = Array.from({ length: PRODUCERS }, (_, index) => {
      const config: ProducerConfig = {
        index,
        seed: random.derive(index).seed,
        redisUrl: proxy!.url,
        mongoUrl: mongo.url,
        dbName: DB_NAME,
        documents: DOCUMENTS,
        updatesPerSecond: UPDATES_PER_SECOND,
        maxInFlight: MAX_IN_FLIGHT,
      };
      return new ChaosChild(`producer ${index}`, 'producer.ts', config, join(logDir, `producer-${index}.log`));
    });
    children.push(...workers, ...producers);
    await withTimeout(Promise.all(children.map((child) => child.start())), BOOT_TIMEOUT_MS, 'producers and workers did not start');
    log('producers and workers ready: faults start');

    const timeline = new FaultTimeline();
    const network = new SeededRandom(random.derive(100).seed);
    proxy.startChaos({ random: () => network.next(), meanCutIntervalMs: MEAN_CUT_INTERVAL_MS, meanDropIntervalMs: MEAN_DROP_INTERVAL_MS });
    for (const { atMs, worker } of plan.workerKills) {
      timeline.at(atMs, async () => {
        if (!workers[worker].alive) return; // between its last death and its restart
        await workers[worker].kill();
        faults.workerKills += 1;
        log(`worker ${worker} killed`);
      });
    }
    timeline.at(plan.redisRestart.atMs, async () => {
      await redis.kill();
      log(`Redis killed; back in ${Math.round(plan.redisRestart.downMs)} ms`);
      await sleep(plan.redisRestart.downMs);
      await redis.start();
      faults.redisRestarts += 1;
      log('Redis started again (same port, same AOF)');
    });
    timeline.at(plan.mongoStop.atMs, async () => {
      await mongo.stop();
      log(`MongoDB stopped for ${plan.mongoStop.downMs / 1000} s`);
      await sleep(plan.mongoStop.downMs);
      await mongo.start();
      faults.mongoStops += 1;
      log('MongoDB started again');
    });
    await sleep(DURATION_MS);

    await timeline.stop();
    Object.assign(faults, proxy.stopChaos());
    log(`faults stopped (${faults.connectionCuts} cuts, ${faults.droppedReplies} dropped replies); stopping producers`);
    const ledgers = await Promise.all(producers.map((producer) => producer.request({ type: 'stop' }, 'ledger', 60_000)));
    const ledger = mergeLedgers(ledgers.map((reply) => reply.ledger));

    const direct = new Redis(redis.url);
    clients.push({ close: () => direct.quit() });
    const mongoClient = new MongoClient(mongo.url);
    clients.push(mongoClient);
    const drain = await drainBuffers(direct, mongoClient, workers);
    keepWorkersRunning = false;
    await Promise.all(workers.map((worker) => worker.stop()));

    const deadLetters = await readDeadLetters(direct);
    const documents = new Map<string, StoredDocument[]>();
    for (const collection of COLLECTIONS) {
      documents.set(collection, await mongoClient.db(DB_NAME).collection<StoredDocument>(collection).find({}).toArray());
    }
    const audit = auditLedger(ledger, documents, deadLetters.documents);
    const result = resultOf(ledger, audit, drain, deadLetters.count, faults, logDir);
    process.stdout.write(report(result));
    if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 2));
    return result.ok ? 0 : 1;
  } finally {
    await cleanup();
  }
}

/**
 * Waits until no namespace holds buffered fields (live or draining), with every worker kept running.
 * A worker killed mid-flush holds its job and the buffer's lock until they lapse, so this takes a few
 * lock periods at most when flushing works.
 */
async function drainBuffers(
  redis: Redis,
  mongo: MongoClient,
  workers: ChaosChild[],
): Promise<{ drained: boolean; undrained: Record<string, number>; ms: number }> {
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
    undrained = Object.fromEntries(buffers.map((buffer, i) => [buffer.namespace, stats[i].bufferedFields]).filter(([, fields]) => fields !== 0));
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
      log(`draining: ${JSON.stringify(undrained)} buffered fields; workers ready: ${workers.filter((worker) => worker.ready).length}/${workers.length}`);
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
    for (const letter of letters) documents.add(`${target.collection}|${String((JSON.parse(letter) as { documentId: unknown }).documentId)}`);
  }
  return { count, documents };
}

function resultOf(
  ledger: LedgerData,
  audit: Audit,
  drain: { drained: boolean; undrained: Record<string, number>; ms: number },
  deadLetters: number,
  faults: FaultCounts,
  logDir: string,
): ChaosResult {
  const total = (outcome: 'acked' | 'ambiguous' | 'refused') => ledger.counts.inc[outcome] + ledger.counts.max[outcome] + ledger.counts.set[outcome];
  const lost = audit.inc.lost + audit.max.lost + audit.set.lost;
  const doubled = audit.inc.doubled;
  const wrong = audit.max.wrong + audit.set.wrong + audit.unexpectedFields;
  return {
    seed: SEED,
    durationS: DURATION_MS / 1000,
    documents: DOCUMENTS,
    updates: ledger.counts,
    acknowledged: total('acked'),
    ambiguous: total('ambiguous'),
    refused: total('refused'),
    inc: audit.inc,
    max: audit.max,
    set: audit.set,
    unexpectedFields: audit.unexpectedFields,
    lost,
    doubled,
    wrong,
    deadLetters,
    drained: drain.drained,
    undrainedFields: drain.undrained,
    drainMs: drain.ms,
    faults,
    problems: audit.problems,
    logDir,
    ok: lost === 0 && doubled === 0 && wrong === 0 && drain.drained,
  };
}

function report(result: ChaosResult): string {
  const n = (value: number) => Math.round(value).toLocaleString('en-US');
  const { inc, max, set, updates, faults } = result;
  const lines = [
    '',
    `## Chaos run, seed ${result.seed}, ${result.durationS} s`,
    '',
    '| | $inc | $max | $set |',
    '|---|---:|---:|---:|',
    `| updates acknowledged | ${n(updates.inc.acked)} | ${n(updates.max.acked)} | ${n(updates.set.acked)} |`,
    `| updates ambiguous | ${n(updates.inc.ambiguous)} | ${n(updates.max.ambiguous)} | ${n(updates.set.ambiguous)} |`,
    `| updates refused before sending | ${n(updates.inc.refused)} | ${n(updates.max.refused)} | ${n(updates.set.refused)} |`,
    `| fields checked | ${n(inc.fields)} | ${n(max.fields)} | ${n(set.fields)} |`,
    `| amount acknowledged / ambiguous | ${n(inc.acked)} / ${n(inc.ambiguous)} | | |`,
    `| amount applied | ${n(inc.applied)} | | |`,
    `| lost (amount / fields) | ${n(inc.lost)} | ${n(max.lost)} | ${n(set.lost)} |`,
    `| doubled (amount) / wrong value (fields) | ${n(inc.doubled)} | ${n(max.wrong)} | ${n(set.wrong)} |`,
    `| dead-lettered (amount / fields) | ${n(inc.deadLettered)} | ${n(max.deadLettered)} | ${n(set.deadLettered)} |`,
    '',
    '| fault | count |',
    '|---|---:|',
    `| worker kills (SIGKILL) | ${faults.workerKills} |`,
    `| worker boot failures (restarted) | ${faults.workerBootFailures} |`,
    `| Redis restarts (SIGKILL, AOF fsync always) | ${faults.redisRestarts} |`,
    `| MongoDB stops (10 s) | ${faults.mongoStops} |`,
    `| connection cuts | ${faults.connectionCuts} |`,
    `| dropped replies | ${faults.droppedReplies} |`,
    '',
    `dead letters: ${result.deadLetters}; unexpected fields: ${result.unexpectedFields}; ` +
      (result.drained ? `drained in ${(result.drainMs / 1000).toFixed(1)} s` : `NOT drained, still buffered: ${JSON.stringify(result.undrainedFields)}`),
    ...(result.problems.length ? ['', 'first discrepancies:', ...result.problems.map((line) => `- ${line}`)] : []),
    '',
    result.ok
      ? `OK: exactly once held (${n(result.acknowledged)} acknowledged, ${n(result.ambiguous)} ambiguous updates)`
      : `FAILED: lost ${n(result.lost)}, doubled ${n(result.doubled)}, wrong ${n(result.wrong)}${result.drained ? '' : ', buffer not drained'} (seed ${result.seed}; logs in ${result.logDir})`,
    '',
  ];
  return lines.join('\n');
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

main().then(
  (code) => process.exit(code),
  (error) => {
    log(`run failed: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
    process.exit(2);
  },
);
