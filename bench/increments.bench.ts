// npm run bench:increments [-- --ingest-seconds 5 --linger 0,1 --seconds 3 --big 10000000 --drain 1000000 --ticks 100 --interval 200]
// Awaited increment() against pipelined HINCRBY (redis-benchmark on the same Redis, same run), naive
// ($inc per call) vs buffered ingest, the 10M exactness run, the 1M-field drain, and the tick-to-visible
// latency of an instance flushing on its own timer, in one run. A count of 0 skips its part.
import { execFile } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { promisify } from 'node:util';
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
    'ingest-seconds': { type: 'string', default: '5' },
    linger: { type: 'string', default: '0,1' },
    'reference-requests': { type: 'string', default: '5000000' },
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
const INGEST_SECONDS = Number(args['ingest-seconds']);
const LINGERS = args.linger.split(',').map(Number);
const REFERENCE_REQUESTS = Number(args['reference-requests']);
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

  if (INGEST_SECONDS > 0) await awaitedIngestVsPipelined(db, redis);

  for (const callers of SECONDS > 0 ? [1, 10, 100] : []) {
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
  if (BIG > 0) {
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
  if (DRAIN_FIELDS > 0) {
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
    `\nbench:increments — ${mongoKind}, Redis ${redisUrl}, Node ${process.version}, ${cpus().length} CPU cores\n`,
  );
  if (ingestRows.length > 0) {
    console.log(
      `Awaited increment() vs pipelined HINCRBY (\`redis-benchmark -P 64 -c 50 -n ${fmt(REFERENCE_REQUESTS)} -r 1000 hincrby\` on the same Redis, before and after the rows: ${referenceRates.map(fmt).join(' / ')} HINCRBY/s; ratios against the higher; Redis CPU per HINCRBY ${referenceCosts.map((cost) => cost.cpu.toFixed(2)).join(' / ')} µs, ${referenceCosts.map((cost) => cost.command.toFixed(2)).join(' / ')} µs of it in the command), ${INGEST_SECONDS} s per row after 1 s of warm-up, load average ${loadAverages.join(' → ')}\n`,
    );
    console.log(
      '| callers | keys | lingerMs | increments/s | vs pipelined HINCRBY | increment() p50 ms | p99 ms | increments per script call | CPU µs per increment: Node / Redis | Redis µs per increment in the script |',
    );
    console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    const reference = Math.max(...referenceRates);
    for (const row of ingestRows)
      console.log(
        `| ${fmt(row.callers)} | ${row.keys} | ${row.lingerMs} | ${fmt(row.rate)} | ${Math.round((row.rate / reference) * 100)}% | ${row.p50.toFixed(2)} | ${row.p99.toFixed(2)} | ${row.perCall.toFixed(1)} | ${row.nodeMicros.toFixed(2)} / ${row.redisMicros.toFixed(2)} | ${row.scriptMicros.toFixed(2)} |`,
      );
    console.log('');
  }
  if (rows.length === 0) return;
  console.log(`Naive vs buffered ingest: ${SECONDS} s per row\n`);
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

interface IngestRow {
  callers: number;
  keys: string;
  lingerMs: number;
  rate: number;
  p50: number;
  p99: number;
  perCall: number;
  /** CPU per increment: this process (callers included) and the Redis server. */
  nodeMicros: number;
  redisMicros: number;
  /** Time the script calls took inside Redis (INFO commandstats), per increment: no reading or replying. */
  scriptMicros: number;
}
const ingestRows: IngestRow[] = [];
const referenceRates: number[] = [];
/** The reference's Redis CPU per HINCRBY (INFO cpu) and the part spent in the command (INFO commandstats). */
const referenceCosts: Array<{ cpu: number; command: number }> = [];
const loadAverages: string[] = [];

/**
 * Awaited increment() calls (each resolves once its update is durable in Redis) at 100 and 1,000
 * concurrent callers, uniform over 1,000 keys and Zipf-skewed (s = 1) over 100,000 keys, against
 * pipelined HINCRBY sent by redis-benchmark to the same Redis. No flush runs meanwhile (in a deployment
 * the workers flush, in other processes); afterwards every buffered sum is checked against the calls.
 */
async function awaitedIngestVsPipelined(db: ReturnType<MongoClient['db']>, redis: Redis): Promise<void> {
  loadAverages.push(loadavg()[0].toFixed(2));
  const admin = new Redis(redisUrl);
  referenceRates.push(await pipelinedHincrby(admin));
  // One string per key, drawn through an index array: the draw costs the callers next to nothing.
  const uniformKeys = Array.from({ length: 1000 }, (_, k) => `key-${k}`);
  const uniform = Array.from({ length: 1 << 20 }, (_, i) => uniformKeys[i % 1000]);
  const zipf = zipfKeys(100_000, 1 << 20);
  for (const callers of [100, 1000]) {
    for (const [keys, sample] of [
      ['uniform, 1,000', uniform],
      ['Zipf, 100,000', zipf],
    ] as const) {
      for (const lingerMs of LINGERS) {
        const namespace = uniqueName('ingest');
        const buffered = new BufferedMongoIncrements(db.collection('ingest'), redis, 60_000, {
          namespace,
          autoFlush: false,
          lingerMs,
        });
        const warmUp = await runFor(1, callers, (i) => buffered.increment(sample[i & (sample.length - 1)], 'n', 1));
        const { calls: callsBefore, micros: scriptMicrosBefore } = await scriptCalls(admin);
        const redisCpuBefore = await redisCpuSeconds(admin);
        const cpuBefore = process.cpuUsage();
        const latencies = new Float64Array(1 << 22);
        let sampled = 0;
        const count = await runFor(INGEST_SECONDS, callers, (i) => {
          const key = sample[i & (sample.length - 1)];
          if ((i & 3) !== 0 || sampled >= latencies.length) return buffered.increment(key, 'n', 1);
          const startedAt = performance.now();
          return buffered.increment(key, 'n', 1).then(() => {
            latencies[sampled++] = performance.now() - startedAt;
          });
        });
        const cpu = process.cpuUsage(cpuBefore);
        const redisCpu = (await redisCpuSeconds(admin)) - redisCpuBefore;
        const scriptsAfter = await scriptCalls(admin);
        const calls = scriptsAfter.calls - callsBefore;
        buffered.destroy();
        const sorted = latencies.subarray(0, sampled).sort();
        ingestRows.push({
          callers,
          keys,
          lingerMs,
          rate: count / INGEST_SECONDS,
          p50: sorted[Math.ceil(0.5 * sampled) - 1],
          p99: sorted[Math.ceil(0.99 * sampled) - 1],
          perCall: count / Math.max(1, calls),
          nodeMicros: (cpu.user + cpu.system) / count,
          redisMicros: (redisCpu * 1e6) / count,
          scriptMicros: (scriptsAfter.micros - scriptMicrosBefore) / count,
        });
        // Warm-up and measured calls together: the buffer must hold exactly that many.
        const live = await admin.hgetall(`bmi:{${namespace}}:live`);
        const total = Object.entries(live)
          .filter(([field]) => !field.startsWith('#'))
          .reduce((sum, [, value]) => sum + Number(value), 0);
        if (total !== warmUp + count) {
          console.error(`${namespace}: the buffer holds ${total}, the calls made ${warmUp + count}`);
          process.exitCode = 1;
        }
        await admin.unlink(`bmi:{${namespace}}:live`);
      }
    }
  }
  referenceRates.push(await pipelinedHincrby(admin));
  loadAverages.push(loadavg()[0].toFixed(2));
  await admin.quit();
}

/**
 * `redis-benchmark -P 64 -c 50 hincrby` over 1,000 fields of one hash, on the bench's Redis: HINCRBY/s.
 * Records what each HINCRBY cost Redis: CPU in all, and the part inside the command.
 */
async function pipelinedHincrby(admin: Redis): Promise<number> {
  const { hostname, port } = new URL(redisUrl);
  const cpuBefore = await redisCpuSeconds(admin);
  const commandBefore = await commandMicros(admin, 'hincrby');
  const { stdout } = await promisify(execFile)('redis-benchmark', [
    ...['-h', hostname, '-p', port, '-P', '64', '-c', '50', '-n', String(REFERENCE_REQUESTS), '-r', '1000', '--csv'],
    ...['hincrby', 'bench:{reference}', 'field:__rand_int__', '1'],
  ]);
  const rps = Number(stdout.trim().split('\n').pop()?.split(',')[1]?.replaceAll('"', ''));
  if (!Number.isFinite(rps)) throw new Error(`redis-benchmark printed no rate: ${stdout}`);
  const command = await commandMicros(admin, 'hincrby');
  const requests = command.calls - commandBefore.calls;
  referenceCosts.push({
    cpu: (((await redisCpuSeconds(admin)) - cpuBefore) * 1e6) / requests,
    command: (command.micros - commandBefore.micros) / requests,
  });
  return rps;
}

/** CPU seconds the Redis server used so far (user and system, main thread and others). */
async function redisCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  return ['used_cpu_user', 'used_cpu_sys'].reduce(
    (sum, name) => sum + Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0),
    0,
  );
}

/** Script calls the server ran so far (EVALSHA, and EVAL after a NOSCRIPT), and the µs they took in all. */
async function scriptCalls(admin: Redis): Promise<{ calls: number; micros: number }> {
  const [evalsha, evalCalls] = await Promise.all([commandMicros(admin, 'evalsha'), commandMicros(admin, 'eval')]);
  return { calls: evalsha.calls + evalCalls.calls, micros: evalsha.micros + evalCalls.micros };
}

/** Calls of one command the server ran so far and the µs they took inside Redis (INFO commandstats). */
async function commandMicros(admin: Redis, command: string): Promise<{ calls: number; micros: number }> {
  const stats = await admin.info('commandstats');
  const match = new RegExp(`cmdstat_${command}:calls=(\\d+),usec=(\\d+)`).exec(stats);
  return { calls: Number(match?.[1] ?? 0), micros: Number(match?.[2] ?? 0) };
}

/** `count` keys drawn from a Zipf distribution (s = 1) over `universe` keys: key-0 is the most frequent. */
function zipfKeys(universe: number, count: number): string[] {
  const keys = Array.from({ length: universe }, (_, k) => `user-${k}`);
  const cumulative = new Float64Array(universe);
  let sum = 0;
  for (let k = 0; k < universe; k++) cumulative[k] = sum += 1 / (k + 1);
  let seed = 42;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * sum;
  return Array.from({ length: count }, () => {
    const target = random();
    let low = 0;
    let high = universe - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (cumulative[middle] < target) low = middle + 1;
      else high = middle;
    }
    return keys[low];
  });
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
