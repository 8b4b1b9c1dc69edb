// npm run bench:backlog [-- --fields 2000000 --documents 100 --batch 20000 --heap-mb 128 --land]
// A backlog of `fields` buffered increments drained by one flush() in a flusher process of its own, cut
// in batches of `batch` fields, against the naive baseline of the same backlog claimed as ONE batch
// (maxBatchFields above the field count); each with V8's default heap and with a heap limit, as a
// flusher with a memory limit runs. Reports batches, MongoDB update statements, drain time, the
// flusher's peak RSS (VmHWM) and the longest Redis command while draining (SLOWLOG), which is how long
// one claim keeps every producer of the Redis server waiting.
//
// Without --land the flusher runs with upsert off against an empty collection: every update is sent but
// matches nothing, so this times the drain (claims, HSCAN reads, grouping, bulkWrites) and measures its
// memory, not the server's document writes. FerretDB (SQLite) scans the whole collection on every update,
// so landing 2,000,000 fields there takes hours; on MongoDB pass --land, which checks every value.
// Without --land the check is that each field's exact amount was sent once ($inc paths and their sum)
// and that the buffer is empty afterwards.
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { testServices, uniqueName } from '@bufferq/testing';
import {
  BacklogFlusherResult,
  backlogTotal,
  dropBacklog,
  fillBacklog,
  runBacklogFlusher,
  wrongBacklogFields,
} from '../libs/buffered-increments/test/fixtures/backlog-flusher';

const { values: args } = parseArgs({
  options: {
    fields: { type: 'string', default: '2000000' },
    documents: { type: 'string', default: '100' },
    batch: { type: 'string', default: '20000' },
    'heap-mb': { type: 'string', default: '128' },
    land: { type: 'boolean', default: false },
  },
});
const shape = { fields: Number(args.fields), documents: Number(args.documents) };
const BATCH = Number(args.batch);
const HEAP_MB = Number(args['heap-mb']);
const LAND = args.land;
for (const [flag, value] of Object.entries({
  fields: shape.fields,
  documents: shape.documents,
  batch: BATCH,
  'heap-mb': HEAP_MB,
})) {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${flag} must be a positive integer`);
}

const urls = testServices();
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const mb = (bytes: number) => `${fmt(bytes / 1024 / 1024)} MB`;

interface Run {
  name: string;
  fields: number;
  maxBatchFields: number;
  heapMb?: number;
}

async function main(): Promise<void> {
  const redis = new Redis(urls.redisUrl);
  const mongo = await new MongoClient(urls.mongoUrl).connect();
  const db = mongo.db(uniqueName('bench_backlog'));
  const loadBefore = loadAverage();
  const runs: Run[] = [
    { name: 'idle flusher (empty buffer)', fields: 0, maxBatchFields: BATCH },
    { name: `batches of ${fmt(BATCH)}`, fields: shape.fields, maxBatchFields: BATCH },
    { name: `batches of ${fmt(BATCH)}`, fields: shape.fields, maxBatchFields: BATCH, heapMb: HEAP_MB },
    { name: 'naive: one batch', fields: shape.fields, maxBatchFields: shape.fields + 1 },
    { name: 'naive: one batch', fields: shape.fields, maxBatchFields: shape.fields + 1, heapMb: HEAP_MB },
  ];
  const rows: string[][] = [];
  let failed = false;
  for (const run of runs) {
    const runShape = { ...shape, fields: run.fields };
    const collection = db.collection(uniqueName('c'));
    const namespace = uniqueName('backlog');
    const filledAt = performance.now();
    await fillBacklog(redis, namespace, runShape);
    const fillSeconds = (performance.now() - filledAt) / 1000;
    process.stderr.write(
      `[bench:backlog] ${run.name}, ${run.heapMb ? `${run.heapMb} MB heap` : 'default heap'}: ${fmt(run.fields)} fields filled in ${fillSeconds.toFixed(1)} s, draining\n`,
    );
    const heap = run.heapMb ? `--max-old-space-size=${run.heapMb}` : 'V8 default';
    await redis.config('SET', 'slowlog-log-slower-than', '1000');
    await redis.config('SET', 'slowlog-max-len', '10000');
    await redis.slowlog('RESET');
    try {
      const result = await runBacklogFlusher(
        urls,
        collection,
        namespace,
        // One FerretDB bulkWrite of thousands of $inc paths takes seconds: the lease must outlast it.
        { maxBatchFields: run.maxBatchFields, upsert: LAND, lockLeaseMs: 300_000 },
        { heapMb: run.heapMb },
      );
      const longest = await longestRedisCommand(redis);
      const check = await checkRun(redis, collection, namespace, runShape, result);
      if (check !== 'exact') failed = true;
      const seconds = result.report.durationMs / 1000;
      rows.push([
        run.name,
        heap,
        fmt(run.fields),
        fmt(result.report.batches),
        fmt(result.updateStatements),
        seconds.toFixed(1),
        run.fields ? fmt(run.fields / seconds) : '-',
        mb(result.peakRssBytes),
        longest,
        check,
      ]);
    } catch (error) {
      const wallMs = (error as { wallMs?: number }).wallMs ?? 0;
      const died = /heap out of memory/.test((error as Error).message)
        ? 'out of heap (V8 FATAL ERROR)'
        : (error as Error).message;
      rows.push([
        run.name,
        heap,
        fmt(run.fields),
        '-',
        '-',
        (wallMs / 1000).toFixed(1),
        '-',
        '-',
        '-',
        `died after ${(wallMs / 1000).toFixed(1)} s: ${died}`,
      ]);
    }
    await redis.config('SET', 'slowlog-log-slower-than', '10000');
    await dropBacklog(redis, namespace);
    await collection.drop().catch(() => undefined);
  }
  const mongoKind = (await mongo.db('admin').command({ buildInfo: 1 })).ferretdbVersion
    ? 'FerretDB (SQLite)'
    : 'MongoDB';
  await db.dropDatabase();
  await mongo.close();
  await redis.quit();

  console.log(
    `\nbench:backlog — ${fmt(shape.fields)} fields over ${fmt(shape.documents)} documents, ${mongoKind}, ` +
      `${LAND ? 'values land (upsert)' : 'updates match nothing (upsert off)'}, Node ${process.version}, ` +
      `load average ${loadBefore} before, ${loadAverage()} after\n`,
  );
  console.log(
    '| flusher | heap | fields | batches | MongoDB update statements | drain s | fields/s | flusher peak RSS (VmHWM) | longest Redis command | check |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  if (failed) process.exitCode = 1;
}

/** 'exact' when every field was applied once (with --land: in MongoDB; else: sent once) and nothing waits. */
async function checkRun(
  redis: Redis,
  collection: Parameters<typeof wrongBacklogFields>[0],
  namespace: string,
  runShape: { fields: number; documents: number },
  result: BacklogFlusherResult,
): Promise<string> {
  const left = await redis.exists(`bmi:{${namespace}}:live`, `bmi:{${namespace}}:draining`);
  if (left) return 'WRONG: the buffer is not empty';
  if (result.report.fields !== runShape.fields) return `WRONG: ${result.report.fields} fields flushed`;
  if (LAND) {
    const wrong = await wrongBacklogFields(collection, runShape);
    return wrong.length ? `WRONG: ${wrong.join(', ')}` : 'exact';
  }
  const expected = { paths: runShape.fields, sum: backlogTotal(runShape) };
  const sent = result.incSent;
  return sent.paths === expected.paths && sent.sum === expected.sum
    ? 'exact'
    : `WRONG: sent ${sent.paths} paths summing ${sent.sum}, expected ${expected.paths} / ${expected.sum}`;
}

/** The slowest command SLOWLOG holds (those over 1 ms), named by what it did; scripts by their keys. */
async function longestRedisCommand(redis: Redis): Promise<string> {
  const entries = (await redis.slowlog('GET', 10_000)) as Array<[number, number, number, string[]]>;
  const slowest = entries.reduce<[number, number, number, string[]] | undefined>(
    (max, entry) => (!max || entry[2] > max[2] ? entry : max),
    undefined,
  );
  if (!slowest) return 'under 1 ms';
  const [name, , , ...keys] = slowest[3];
  // claim-batch-8 takes [lock, live, draining, ...]; finish-batch-4 [lock, draining, ...]; buffer-updates-4 [live, ...].
  const script =
    name.toLowerCase() === 'evalsha'
      ? keys[1]?.endsWith(':live')
        ? ' (claim-batch-8)'
        : keys[0]?.endsWith(':live')
          ? ' (buffer-updates-4)'
          : ' (script)'
      : '';
  return `${(slowest[2] / 1000).toFixed(1)} ms, ${name.toLowerCase()}${script}; ${entries.length} over 1 ms`;
}

function loadAverage(): string {
  return loadavg()
    .map((load) => load.toFixed(2))
    .join(' ');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
