// npm run bench:increments [-- --seconds 3 --big 10000000 --drain 1000000 --ticks 100 --interval 200]
// Naive ($inc per call) vs buffered ingest, the 10M exactness run, the 1M-field drain, and the
// tick-to-visible latency of an instance flushing on its own timer, in one run.
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { BufferedMongoIncrements } from '@bufferq/buffered-increments';
import { testServices, uniqueName } from '@bufferq/testing';
import { runClusterBench } from './increments-cluster.bench';

// `-- --cluster` runs bench/increments-cluster.bench.ts instead, which reads its own flags.
const CLUSTER = process.argv.includes('--cluster');
const { values: args } = parseArgs({
  args: CLUSTER ? [] : undefined,
  options: {
    seconds: { type: 'string', default: '3' },
    big: { type: 'string', default: '10000000' },
    drain: { type: 'string', default: '1000000' },
    keys: { type: 'string', default: '1000' },
    'fields-per-doc': { type: 'string', default: '100' },
    ticks: { type: 'string', default: '100' },
    interval: { type: 'string', default: '200' },
    'latency-keys': { type: 'string', default: '50' },
  },
});
const SECONDS = Number(args.seconds);
const BIG = Number(args.big);
const DRAIN_FIELDS = Number(args.drain);
const KEYS = Number(args.keys);
const TICKS = Number(args.ticks);
const INTERVAL_MS = Number(args.interval);
const LATENCY_KEYS = Number(args['latency-keys']);
/** How long before a tick the probe update is made: "just before", yet surely in that tick's batch. */
const PROBE_LEAD_MS = 30;

const { redisUrl, mongoUrl } = testServices();
const rows: string[][] = [];
const latencyRows: string[][] = [];
let peakRss = 0;
const rssSampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const mongo = await new MongoClient(mongoUrl, { monitorCommands: true, maxPoolSize: 100 }).connect();
  let writeCommands = 0;
  let writeStatements = 0;
  mongo.on('commandStarted', (event) => {
    if (event.commandName === 'update') {
      writeCommands += 1;
      writeStatements += (event.command.updates as unknown[]).length;
    }
  });
  const db = mongo.db(uniqueName('bench'));
  // Auto-pipelining sends the concurrent callers' commands to Redis in shared writes.
  const redis = new Redis(redisUrl, { enableAutoPipelining: true });

  for (const callers of [1, 10, 100]) {
    const naive = db.collection(`naive_${callers}`);
    // Documents exist up front: concurrent first upserts of one _id would collide (E11000) otherwise.
    await naive.insertMany(Array.from({ length: KEYS }, (_, k) => ({ _id: `k${k}` as never, n: 0 })));
    writeCommands = writeStatements = 0;
    const naiveCount = await runFor(SECONDS, callers, (i) =>
      naive.updateOne({ _id: `k${i % KEYS}` as never }, { $inc: { n: 1 } }, { upsert: true }).then(() => undefined),
    );
    rows.push([`naive $inc, ${callers} callers`, fmt(naiveCount / SECONDS), fmt(writeCommands), fmt(writeStatements)]);

    const buffered = new BufferedMongoIncrements(db.collection(`buffered_${callers}`), redis, 1_000, {
      namespace: uniqueName('b'),
    });
    writeCommands = writeStatements = 0;
    const bufferedCount = await runFor(SECONDS, callers, (i) => buffered.increment(`k${i % KEYS}`, 'n', 1));
    await buffered.close();
    rows.push([`buffered, ${callers} callers`, fmt(bufferedCount / SECONDS), fmt(writeCommands), fmt(writeStatements)]);
    await assertTotal(db.collection(`buffered_${callers}`), bufferedCount);
  }

  // 10M increments of 2 over 1,000 keys, then an exact check of every total.
  {
    const collection = db.collection('big');
    const buffered = new BufferedMongoIncrements(collection, redis, 1_000, { namespace: uniqueName('big') });
    peakRss = process.memoryUsage().rss;
    writeCommands = writeStatements = 0;
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        for (let i = next++; i < BIG; i = next++) await buffered.increment(`k${i % KEYS}`, 'n', 2);
      }),
    );
    await buffered.close();
    const seconds = (performance.now() - started) / 1000;
    const docs = await collection.find().toArray();
    const perKey = new Map(docs.map((doc) => [doc._id as unknown as string, doc.n as number]));
    let exact = docs.length === Math.min(KEYS, BIG);
    for (let k = 0; k < Math.min(KEYS, BIG); k++) {
      const expected = 2 * (Math.floor(BIG / KEYS) + (k < BIG % KEYS ? 1 : 0));
      if (perKey.get(`k${k}`) !== expected) exact = false;
    }
    rows.push([
      `${fmt(BIG)} x +2 over ${fmt(KEYS)} keys (200 callers)`,
      `${fmt(BIG / seconds)} (${seconds.toFixed(1)} s, peak RSS ${mb(peakRss)})`,
      fmt(writeCommands),
      `${fmt(writeStatements)}; totals ${exact ? 'exact' : 'WRONG'}`,
    ]);
    if (!exact) process.exitCode = 1;
  }

  // Drain of 1M buffered fields: fields/s, and the longest Redis command while draining. The flusher
  // runs with upsert off against an empty collection, so every update is sent but matches nothing:
  // this times the drain itself (claim, HSCAN reads, grouping, bulkWrites), not the server's document
  // writes, which on FerretDB (SQLite) run at a few document updates per second for large documents.
  {
    const collection = db.collection('drain');
    const namespace = uniqueName('drain');
    const filler = new BufferedMongoIncrements(collection, redis, 1_000, {
      namespace,
      autoFlush: false,
      maxBufferedFields: Number.MAX_SAFE_INTEGER,
    });
    const fieldsPerDoc = Number(args['fields-per-doc']);
    let next = 0;
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        for (let i = next++; i < DRAIN_FIELDS; i = next++)
          await filler.increment(`d${Math.floor(i / fieldsPerDoc)}`, `f${i % fieldsPerDoc}`, 1);
      }),
    );
    const admin = new Redis(redisUrl);
    await admin.config('SET', 'slowlog-log-slower-than', '1000');
    await admin.slowlog('RESET');
    peakRss = process.memoryUsage().rss;
    writeCommands = writeStatements = 0;
    // FerretDB takes seconds per bulkWrite of large documents: the lease must outlast one.
    const flusher = new BufferedMongoIncrements(collection, redis, 60_000, {
      namespace,
      autoFlush: false,
      upsert: false,
      lockLeaseMs: 120_000,
    });
    const started = performance.now();
    const report = await flusher.flush();
    const seconds = (performance.now() - started) / 1000;
    const slow = (await admin.slowlog('GET', 1000)) as Array<[number, number, number, string[]]>;
    const longestUs = slow.reduce((max, entry) => Math.max(max, Number(entry[2])), 0);
    const longestCommand = slow.find((entry) => Number(entry[2]) === longestUs)?.[3]?.[0] ?? '-';
    await admin.config('SET', 'slowlog-log-slower-than', '10000');
    rows.push([
      `drain ${fmt(report.fields)} buffered fields (${fmt(report.documents)} docs, updates match nothing)`,
      `${fmt(report.fields / seconds)} fields/s (${seconds.toFixed(1)} s, peak RSS ${mb(peakRss)})`,
      fmt(writeCommands),
      `longest Redis command while draining (SLOWLOG) ${longestUs ? `${(longestUs / 1000).toFixed(2)} ms (${longestCommand})` : 'under 1 ms'}`,
    ]);
    filler.destroy();
    await admin.quit();
  }

  // Tick-to-visible latency: an instance flushing on its own timer; an update made just before each
  // tick, then MongoDB polled until it shows it. Idle, and with producers keeping LATENCY_KEYS other
  // documents busy, so every tick also writes a batch of that many documents.
  for (const loadKeys of TICKS > 0 ? [0, LATENCY_KEYS] : []) {
    writeCommands = writeStatements = 0;
    const { latencies, missed } = await tickToVisible(db.collection(`latency_${loadKeys}`), redis, loadKeys);
    const sorted = [...latencies].sort((a, b) => a - b);
    latencyRows.push([
      loadKeys ? `10 producers over ${fmt(loadKeys)} other keys` : 'idle (the probe only)',
      fmt(INTERVAL_MS),
      fmt(sorted.length),
      percentile(sorted, 0.5).toFixed(0),
      percentile(sorted, 0.99).toFixed(0),
      sorted[sorted.length - 1].toFixed(0),
      `${fmt(writeCommands)} / ${fmt(writeStatements)}`,
      fmt(missed),
    ]);
  }

  clearInterval(rssSampler);
  await db.dropDatabase();
  await mongo.close();
  await redis.quit();
  const mongoKind = (await isFerret(mongoUrl)) ? 'FerretDB 1.24 (SQLite)' : 'MongoDB';
  console.log(
    `\nbench:increments — ${SECONDS}s per ingest run, ${mongoKind}, Redis ${redisUrl}, Node ${process.version}\n`,
  );
  console.log('| scenario | increments/s | MongoDB write commands | MongoDB update statements / notes |');
  console.log('|---|---|---|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  if (latencyRows.length === 0) return;
  console.log(
    `\nTick-to-visible latency: update made ${PROBE_LEAD_MS} ms before a tick, time from the tick until findOne (polled every ms) shows it\n`,
  );
  console.log(
    '| load | flushIntervalMs | ticks | p50 ms | p99 ms | max ms | MongoDB write commands / statements | probes that missed their tick |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of latencyRows) console.log(`| ${row.join(' | ')} |`);
}

/**
 * Measures TICKS ticks of an instance with autoFlush on. Its ticks fall at construction + k * interval
 * (the schedule never drifts), so the tick times are known here without reaching into the instance.
 */
async function tickToVisible(
  collection: ReturnType<ReturnType<MongoClient['db']>['collection']>,
  redis: Redis,
  loadKeys: number,
): Promise<{ latencies: number[]; missed: number }> {
  const constructedAt = Date.now();
  const buffered = new BufferedMongoIncrements(collection, redis, INTERVAL_MS, { namespace: uniqueName('latency') });
  let loading = loadKeys > 0;
  const load = Promise.all(
    Array.from({ length: loading ? 10 : 0 }, async (_, caller) => {
      for (let i = caller; loading; i += 10) await buffered.increment(`load${i % loadKeys}`, 'n', 1);
    }),
  );
  const latencies: number[] = [];
  let missed = 0;
  let expected = 0;
  // Two ticks of warm-up (scripts loaded, collection and probe document created).
  for (let tick = 2; latencies.length < TICKS; tick++) {
    const tickAt = constructedAt + tick * INTERVAL_MS;
    if (Date.now() > tickAt - PROBE_LEAD_MS) continue; // the last probe took past this tick's lead
    await sleep(tickAt - PROBE_LEAD_MS - Date.now());
    await buffered.increment('probe', 'n', 1);
    expected += 1;
    const inTime = Date.now() < tickAt;
    while (((await collection.findOne({ _id: 'probe' as never }, { projection: { n: 1 } }))?.n ?? 0) < expected)
      await sleep(1);
    if (inTime) latencies.push(Date.now() - tickAt);
    else missed += 1; // buffered after the tick had fired: not a measure of this tick
  }
  loading = false;
  await load;
  await buffered.close();
  return { latencies, missed };
}

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

async function runFor(seconds: number, callers: number, call: (i: number) => Promise<void>): Promise<number> {
  const until = performance.now() + seconds * 1000;
  let count = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < until) await call(count++);
    }),
  );
  return count;
}

async function assertTotal(
  collection: ReturnType<ReturnType<MongoClient['db']>['collection']>,
  expected: number,
): Promise<void> {
  const docs = await collection.find().toArray();
  const total = docs.reduce((sum, doc) => sum + doc.n, 0);
  if (total !== expected) {
    console.error(`total mismatch in ${collection.collectionName}: ${total} != ${expected}`);
    process.exitCode = 1;
  }
}

async function isFerret(url: string): Promise<boolean> {
  const client = await new MongoClient(url).connect();
  const info = await client.db('admin').command({ buildInfo: 1 });
  await client.close();
  return 'ferretdbVersion' in info;
}

(CLUSTER ? runClusterBench(process.argv.slice(2)).finally(() => clearInterval(rssSampler)) : main()).catch((error) => {
  console.error(error);
  process.exit(1);
});
