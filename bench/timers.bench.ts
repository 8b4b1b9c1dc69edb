// npm run bench:timers [-- --timers 1000000 --due-timers <--timers> --burst 20000 --baseline 20000 --parallel 2
//   --concurrency 200 --delivery-batch 200 --scheduler-batch 20000 --lookahead 1000 --workers 1
//   --worker-build compiled|ts-node --warmup 0 --receiver-warmup 5000 --worker-prof <dir> --step-ms 100
//   --worker-node-args=<node options for the worker processes, space-separated>]
//   (--timers, --baseline or --burst 0 skips that part)
// 1. Creates --timers timers due in 1-2 days through the library (TimersService.createMany, batches of
//    --batch), and --single-timers through TimersService.create, one per call as POST /timers does,
//    --create-callers at once: timers/s, Redis memory per pending timer (INFO used_memory delta, and MEMORY USAGE of the
//    schedule's two tiers: the timing wheel and `due`), MongoDB size. Then the same through DueIndex.schedule
//    alone (no MongoDB: what limits creation), and --due-timers of them all in `due` (one tier) to compare.
// 2. Naive baseline in the same run: one BullMQ delayed job per timer (--baseline jobs): memory per timer.
// 3. A burst of --burst timers all due in the same second, delivered by --workers timers workers (own
//    processes, compiled by default, so creation, receiver and worker do not share one core) to a local
//    keep-alive receiver: deliveries/s and lateness (first arrival minus due time) p50/p99/max, duplicates;
//    the log adds due times and arrivals per --step-ms and the receiver's connection count. --warmup N delivers
//    N timers first; the receiver answers --receiver-warmup requests before the burst.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ObjectId } from 'mongodb';
import { Agent, request } from 'undici';
import { bullmqConnection } from '@bufferq/datastores';
import { testServices, uniqueName, WebhookReceiver } from '@bufferq/testing';
import { DueIndex, TIMERS_COLLECTION, timersEnv } from '@bufferq/timers';
import { startTimers } from '../libs/timers/test/fixtures/timers-harness';

const { values: args } = parseArgs({
  options: {
    timers: { type: 'string', default: '1000000' },
    'due-timers': { type: 'string' },
    burst: { type: 'string', default: '20000' },
    baseline: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '1000' },
    'single-timers': { type: 'string', default: '20000' },
    'create-callers': { type: 'string', default: '200' },
    parallel: { type: 'string', default: '2' },
    'burst-timeout-s': { type: 'string', default: '600' },
    concurrency: { type: 'string', default: '200' },
    'delivery-batch': { type: 'string', default: '200' },
    'scheduler-batch': { type: 'string', default: '20000' },
    lookahead: { type: 'string', default: '1000' },
    'worker-prof': { type: 'string' },
    'worker-node-args': { type: 'string', default: '' },
    workers: { type: 'string', default: '1' },
    'worker-build': { type: 'string', default: 'compiled' },
    warmup: { type: 'string', default: '0' },
    'receiver-warmup': { type: 'string', default: '5000' },
    'step-ms': { type: 'string', default: '100' },
  },
});
const TIMERS = Number(args.timers);
/** Timers of the one-tier comparison row (all in `due`); --timers by default. */
const DUE_TIMERS = Number(args['due-timers'] ?? args.timers);
const BURST = Number(args.burst);
const BASELINE = Number(args.baseline);
const BATCH = Number(args.batch);
const SINGLE_TIMERS = Number(args['single-timers']);
const CREATE_CALLERS = Number(args['create-callers']);
const PARALLEL = Number(args.parallel);
const BURST_TIMEOUT_MS = Number(args['burst-timeout-s']) * 1000;
const WORKERS = Number(args.workers);
const WARMUP = Number(args.warmup);
const RECEIVER_WARMUP = Number(args['receiver-warmup']);
const STEP_MS = Number(args['step-ms']);

const { redisUrl, mongoUrl } = testServices();
const rows: string[][] = [];
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const log = (message: string) => process.stderr.write(`[bench:timers] ${message}\n`);
const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

/** Runs `total` items through `work` in batches, `parallel` batches at a time; returns items/s. */
async function inBatches(
  total: number,
  work: (size: number, offset: number) => Promise<void>,
  progressEvery = 100_000,
): Promise<number> {
  const started = Date.now();
  let next = 0;
  let done = 0;
  let reported = 0;
  const lane = async () => {
    while (next < total) {
      const offset = next;
      const size = Math.min(BATCH, total - offset);
      next += size;
      await work(size, offset);
      done += size;
      if (done - reported >= progressEvery) {
        reported = done;
        log(`${fmt(done)} / ${fmt(total)} (${fmt(done / ((Date.now() - started) / 1000))}/s)`);
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  return total / ((Date.now() - started) / 1000);
}

/** A timer due in 1-2 days, whole seconds from now: what the creation rows create. */
const farDelay = () => ({
  hours: 24 + Math.floor(Math.random() * 24),
  minutes: Math.floor(Math.random() * 60),
  seconds: Math.floor(Math.random() * 60),
  url: 'https://hooks.example.com/timers',
});

/** Every key of a schedule: each shard's TimerKeys and its timing wheel's bucket strings. */
async function scheduleKeys(redis: Redis, dueIndex: DueIndex): Promise<{ fixed: string[]; buckets: string[] }> {
  const fixed = dueIndex.shards.flatMap((keys) => Object.values(keys) as string[]);
  const buckets: string[] = [];
  for (const { wheel } of dueIndex.shards) {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${wheel}:*`, 'COUNT', 10_000);
      buckets.push(...found);
      cursor = next;
    } while (cursor !== '0');
  }
  return { fixed, buckets };
}

/** MEMORY USAGE of the schedule's two tiers: `due` (and `staged`) and the timing wheel (set, counter, buckets). */
async function tierBytes(redis: Redis, dueIndex: DueIndex): Promise<{ due: number; wheel: number }> {
  const { buckets } = await scheduleKeys(redis, dueIndex);
  const usage = async (keys: string[]) => {
    let bytes = 0;
    for (let i = 0; i < keys.length; i += 10_000) {
      const pipeline = redis.pipeline();
      for (const key of keys.slice(i, i + 10_000)) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
      for (const [error, value] of (await pipeline.exec()) ?? []) {
        if (error) throw error;
        bytes += Number(value ?? 0);
      }
    }
    return bytes;
  };
  return {
    due: await usage(dueIndex.shards.flatMap((keys) => [keys.due, keys.staged])),
    wheel: await usage([...dueIndex.shards.flatMap((keys) => [keys.wheel, keys.wheeled]), ...buckets]),
  };
}

async function dropSchedule(redis: Redis, dueIndex: DueIndex): Promise<void> {
  const { fixed, buckets } = await scheduleKeys(redis, dueIndex);
  const keys = [...fixed, ...buckets];
  for (let i = 0; i < keys.length; i += 10_000) await redis.unlink(...keys.slice(i, i + 10_000));
}

/** Rows on what the schedule holds after a creation run: memory per pending timer, by tier. */
async function memoryRows(
  redis: Redis,
  dueIndex: DueIndex,
  usedDelta: number,
  label: string,
  target = '<= 40 B',
): Promise<void> {
  const pending = await dueIndex.size();
  const inDue = sum(await Promise.all(dueIndex.shards.map((keys) => redis.zcard(keys.due))));
  const inWheel = pending - inDue;
  const { due, wheel } = await tierBytes(redis, dueIndex);
  rows.push([`${label}: Redis per pending timer (used_memory delta)`, `${fmt(usedDelta / pending, 1)} B`, target]);
  rows.push([
    `${label}: Redis per pending timer (MEMORY USAGE: timing wheel ${fmt(inWheel)} timers, due ${fmt(inDue)})`,
    `${fmt((due + wheel) / pending, 1)} B (wheel ${inWheel ? `${fmt(wheel / inWheel, 1)} B/timer` : `${fmt(wheel)} B`}, due ${inDue ? `${fmt(due / inDue, 1)} B/timer` : `${fmt(due)} B`})`,
    target,
  ]);
}

/**
 * DueIndex.schedule alone, as TimersService.createMany calls it (batches of --batch, --parallel at once),
 * without MongoDB: how fast the Redis side can index, and what it costs. `horizonDays` beyond 2 puts every
 * timer into `due` (the one-tier schedule, for comparison).
 */
async function dueIndexOnly(redis: Redis, count: number, horizonDays?: number): Promise<void> {
  const settings: Record<string, string> = { TIMERS_REDIS_PREFIX: uniqueName('bindex') };
  if (horizonDays) settings.TIMERS_RECONCILE_INTERVAL_MS = String((horizonDays * 86_400_000) / 2);
  const dueIndex = new DueIndex(redis, timersEnv.parse(settings));
  const before = await usedMemory(redis);
  const tier = horizonDays ? 'all in due' : 'far ones in the timing wheel';
  log(`DueIndex.schedule alone: ${fmt(count)} timers due in 1-2 days, ${tier}`);
  const rate = await inBatches(count, async (size) => {
    const now = Date.now();
    await dueIndex.schedule(
      Array.from({ length: size }, () => {
        const { hours, minutes, seconds } = farDelay();
        return { id: new ObjectId().toHexString(), runAt: now + (hours * 3600 + minutes * 60 + seconds) * 1000 };
      }),
      now,
    );
  });
  const after = await usedMemory(redis);
  rows.push([
    `index ${fmt(count)} timers, DueIndex.schedule alone (no MongoDB; ${tier}, batches of ${BATCH}, ${PARALLEL} in parallel)`,
    `${fmt(rate)} timers/s`,
    horizonDays ? '' : '>= 20,000 timers/s',
  ]);
  // The one-tier rows are there to compare with: the target is the wheel's.
  await memoryRows(redis, dueIndex, after - before, `DueIndex alone, ${tier}`, horizonDays ? '' : undefined);
  await dropSchedule(redis, dueIndex);
}

async function creation(redis: Redis): Promise<void> {
  const mongoDb = uniqueName('bench_timers');
  const config = timersEnv.parse({ TIMERS_REDIS_PREFIX: uniqueName('btimers') });
  const ctx = await startTimers({ redisUrl, mongoUrl, mongoDb, config, worker: false });
  const dueIndex = ctx.app.get(DueIndex);
  const before = await usedMemory(redis);
  log(`creating ${fmt(TIMERS)} timers due in 1-2 days`);
  const rate = await inBatches(TIMERS, (size) =>
    ctx.timers.createMany(Array.from({ length: size }, farDelay)).then(() => undefined),
  );
  const after = await usedMemory(redis);
  const stats = await ctx.db.command({ collStats: TIMERS_COLLECTION });
  rows.push([
    `create ${fmt(TIMERS)} timers (library: MongoDB insert + DueIndex, batches of ${BATCH}, ${PARALLEL} in parallel)`,
    `${fmt(rate)} timers/s`,
    '>= 20,000 timers/s',
  ]);
  await memoryRows(redis, dueIndex, after - before, 'library');
  rows.push([
    `MongoDB timers collection (${fmt(stats.count)} docs)`,
    `data ${fmt(stats.size / 2 ** 20, 1)} MiB, storage ${fmt(stats.storageSize / 2 ** 20, 1)} MiB, indexes ${fmt(stats.totalIndexSize / 2 ** 20, 1)} MiB (${fmt(stats.size / stats.count)} B/timer data)`,
    '',
  ]);
  if (SINGLE_TIMERS) {
    log(`creating ${fmt(SINGLE_TIMERS)} timers one per create() call, ${CREATE_CALLERS} calls at once`);
    const started = Date.now();
    let next = 0;
    const caller = async () => {
      while (next++ < SINGLE_TIMERS) await ctx.timers.create(farDelay());
    };
    await Promise.all(Array.from({ length: CREATE_CALLERS }, caller));
    rows.push([
      `create ${fmt(SINGLE_TIMERS)} timers, one per TimersService.create call (as POST /timers; ${CREATE_CALLERS} calls at once)`,
      `${fmt(SINGLE_TIMERS / ((Date.now() - started) / 1000))} timers/s`,
      '',
    ]);
  }
  log('dropping the creation data');
  await dropSchedule(redis, dueIndex);
  await ctx.db.dropDatabase();
  await ctx.close();
  await dueIndexOnly(redis, TIMERS);
  await dueIndexOnly(redis, DUE_TIMERS, 7);
}

async function naiveBaseline(redis: Redis): Promise<void> {
  const queue = new Queue('naive-timers', {
    connection: bullmqConnection(redisUrl),
    prefix: uniqueName('bnaive'),
  });
  const before = await usedMemory(redis);
  log(`naive baseline: ${fmt(BASELINE)} delayed BullMQ jobs`);
  const rate = await inBatches(BASELINE, async (size, offset) => {
    await queue.addBulk(
      Array.from({ length: size }, (_, i) => ({
        name: 'fire',
        data: { url: 'https://hooks.example.com/timers', timer: offset + i },
        opts: {
          delay: 86_400_000 + Math.floor(Math.random() * 86_400_000),
          attempts: 8,
          backoff: { type: 'exponential', delay: 1_000 },
        },
      })),
    );
  });
  const after = await usedMemory(redis);
  rows.push([
    `naive: one delayed BullMQ job per timer (${fmt(BASELINE)} jobs)`,
    `${fmt((after - before) / BASELINE, 1)} B/timer, ${fmt(rate)} timers/s`,
    '',
  ]);
  await queue.obliterate({ force: true });
  await queue.close();
}

/**
 * The burst's worker code as a runnable file. `compiled` (default): tsc output, plain JavaScript as a
 * production worker runs it (`dist/`); `ts-node`: the TypeScript sources through ts-node (transpile-only,
 * with its source-map support), as the tests run them.
 */
async function workerCommand(): Promise<{ args: string[]; env: Record<string, string> }> {
  const child = join(__dirname, '../libs/timers/test/fixtures/timers-worker-child.ts');
  if (args['worker-build'] === 'ts-node')
    return {
      args: ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', child],
      env: {},
    };
  const root = join(__dirname, '..');
  const outDir = mkdtempSync(join(tmpdir(), 'bench-timers-worker-'));
  process.once('exit', () => rmSync(outDir, { recursive: true, force: true }));
  const project = join(outDir, 'tsconfig.json');
  writeFileSync(
    project,
    JSON.stringify({
      extends: join(root, 'tsconfig.json'),
      compilerOptions: {
        outDir,
        rootDir: root,
        incremental: false,
        sourceMap: false,
        declaration: false,
        noEmitOnError: false,
      },
      files: [child],
    }),
  );
  log(`compiling the worker into ${outDir}`);
  // Type errors elsewhere in the tree do not stop the emit; the tests and `tsc --noEmit` catch them.
  spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', project], {
    stdio: 'ignore',
  });
  // The Lua scripts and other assets of every lib the worker loads (tsc emits only the code).
  cpSync(join(root, 'libs'), join(outDir, 'libs'), {
    recursive: true,
    filter: (source) => !source.endsWith('.ts'),
  });
  return {
    args: ['-r', 'tsconfig-paths/register', join(outDir, 'libs/timers/test/fixtures/timers-worker-child.js')],
    // Packages from the repository's node_modules (the output lives outside the tree).
    env: {
      TS_NODE_PROJECT: join(root, 'tsconfig.json'),
      TS_NODE_BASEURL: outDir,
      NODE_PATH: join(root, 'node_modules'),
    },
  };
}

/**
 * The receiver stands in for a webhook endpoint that is already serving, so it answers some requests
 * before the burst (from this process, not the worker): its own JIT warm-up is not the worker's lateness.
 * The worker stays cold unless --warmup is given.
 */
async function warmUpReceiver(receiver: WebhookReceiver): Promise<void> {
  const agent = new Agent({ connections: 50 });
  try {
    await Promise.all(
      Array.from({ length: RECEIVER_WARMUP }, (_, i) =>
        request(`${receiver.url}/warmup-receiver/${i}`, { method: 'POST', dispatcher: agent }).then((response) =>
          response.body.dump(),
        ),
      ),
    );
  } finally {
    await agent.close();
  }
  log(`receiver answered ${fmt(RECEIVER_WARMUP)} requests before the burst`);
}

const isBurstPath = (path: string) => path.startsWith('/t/');

/** User + system CPU time (ms) in a `/proc/<pid>/stat` line (clock ticks, 10 ms on Linux). */
function statCpuMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU time (ms) a process has used, from /proc; NaN without /proc. */
function processCpuMs(pid: number): number {
  try {
    return statCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return NaN;
  }
}

/** CPU time (ms, all cores) the whole machine has spent busy (not idle nor waiting for I/O). */
function machineBusyMs(): number {
  try {
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    return (ticks.reduce((sum, t) => sum + t, 0) - ticks[3] - ticks[4]) * 10;
  } catch {
    return NaN;
  }
}

/** CPU time (ms) of every process on the machine, with its command name, from /proc. */
function processesCpuMs(): Map<number, { name: string; ms: number }> {
  const cpu = new Map<number, { name: string; ms: number }>();
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        cpu.set(Number(entry), { name, ms: statCpuMs(stat) });
      } catch {
        // The process ended meanwhile.
      }
    }
  } catch {
    // No /proc.
  }
  return cpu;
}

/** The processes that used the most CPU between two processesCpuMs() readings, as a log line. */
function topProcesses(before: Map<number, { name: string; ms: number }>, spanMs: number): string {
  const used = [...processesCpuMs()]
    .map(([pid, { name, ms }]) => ({ pid, name, ms: ms - (before.get(pid)?.ms ?? 0) }))
    .filter((process) => process.ms > 0)
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 8);
  return `CPU ms by process over the ${spanMs} ms from the due second: ${used.map((p) => `${p.name}[${p.pid}] ${p.ms}`).join(', ')}`;
}

/**
 * Samples, every --step-ms from the due second, the CPU used by this process (the receiver), the worker
 * processes and the whole machine: which of them was short of CPU when arrivals dipped. Returns a stop
 * function that gives the log line.
 */
function sampleCpu(dueSecond: number, workers: ChildProcess[]): () => string {
  const samples: Array<{ at: number; bench: number; workers: number; machine: number }> = [];
  const sample = () => {
    const bench = process.cpuUsage();
    samples.push({
      at: Date.now() - dueSecond,
      bench: (bench.user + bench.system) / 1000,
      workers: workers.reduce((sum, worker) => sum + processCpuMs(worker.pid!), 0),
      machine: machineBusyMs(),
    });
  };
  let interval: NodeJS.Timeout | undefined;
  let processes = new Map<number, { name: string; ms: number }>();
  const start = setTimeout(
    () => {
      processes = processesCpuMs();
      sample();
      interval = setInterval(sample, STEP_MS);
    },
    Math.max(0, dueSecond - Date.now()),
  );
  return () => {
    clearTimeout(start);
    clearInterval(interval);
    sample();
    const steps = samples.slice(1).map((now, i) => {
      const before = samples[i];
      const ms = (key: 'bench' | 'workers' | 'machine') => Math.round(now[key] - before[key]);
      return `${before.at}:${ms('bench')}/${ms('workers')}/${ms('machine')}`;
    });
    const span = samples.length ? samples[samples.length - 1].at - samples[0].at : 0;
    return `${topProcesses(processes, span)}\n[bench:timers] CPU ms per step from the due second (ms after it: receiver (this process) / worker(s) / whole machine of ${availableParallelism() * STEP_MS} on ${availableParallelism()} cores): ${steps.join(' ')}`;
  };
}

let command: Promise<{ args: string[]; env: Record<string, string> }> | undefined;
/** When each worker process was spawned (ms), to place its own clock (--trace-gc's ms since start) on ours. */
const spawnedAt = new Map<number, number>();

/** Starts one timers worker process; resolves once it runs. */
async function startWorker(options: string): Promise<ChildProcess> {
  command ??= workerCommand();
  const { args: workerArgs, env } = await command;
  const worker = spawn(
    process.execPath,
    [
      ...(args['worker-prof'] ? ['--cpu-prof', '--cpu-prof-dir', args['worker-prof']] : []),
      ...args['worker-node-args'].split(' ').filter(Boolean),
      ...workerArgs,
    ],
    {
      env: { ...process.env, ...env, TIMERS_CHILD_OPTIONS: options },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  spawnedAt.set(worker.pid!, Date.now());
  await new Promise<void>((resolve, reject) => {
    // What else the worker prints (node's --trace-gc, for one) goes to this process's stderr.
    worker.stdout!.on('data', (chunk: Buffer) =>
      chunk.toString().includes('ready\n') ? resolve() : process.stderr.write(chunk),
    );
    worker.once('exit', (code) => reject(new Error(`worker process exited (${code})`)));
  });
  return worker;
}

async function burst(): Promise<void> {
  const mongoDb = uniqueName('bench_burst');
  const config = timersEnv.parse({
    TIMERS_REDIS_PREFIX: uniqueName('bburst'),
    TIMERS_ALLOW_PRIVATE_TARGETS: 'true',
    TIMERS_SCHEDULER_POLL_MS: '20',
    TIMERS_DELIVERY_CONCURRENCY: args.concurrency,
    TIMERS_MAX_CONCURRENCY_PER_HOST: args.concurrency,
    TIMERS_DELIVERY_BATCH: args['delivery-batch'],
    TIMERS_SCHEDULER_BATCH: args['scheduler-batch'],
    TIMERS_SCHEDULER_LOOKAHEAD_MS: args.lookahead,
  });
  const receiver = await new WebhookReceiver().start();
  const api = await startTimers({ redisUrl, mongoUrl, mongoDb, config, worker: false });
  const workers = await Promise.all(
    Array.from({ length: WORKERS }, () => startWorker(JSON.stringify({ redisUrl, mongoUrl, mongoDb, config }))),
  );
  try {
    if (WARMUP) {
      // A worker that has been delivering: JIT-compiled code and open connections to the receiver. The
      // burst is created once the warm-up's outcomes are recorded (FerretDB locks on concurrent writes).
      log(`warm-up: ${fmt(WARMUP)} timers due in 1 s`);
      await api.timers.createMany(
        Array.from({ length: WARMUP }, () => ({
          hours: 0,
          minutes: 0,
          seconds: 1,
          url: `${receiver.url}/warmup`,
        })),
      );
      const recorded = () => api.db.collection(TIMERS_COLLECTION).countDocuments({ status: 'delivered' });
      const warmupDeadline = Date.now() + 300_000;
      while ((await recorded()) < WARMUP && Date.now() < warmupDeadline)
        await new Promise((resolve) => setTimeout(resolve, 500));
      log(`warm-up delivered and recorded (${await recorded()})`);
      await api.db.collection(TIMERS_COLLECTION).deleteMany({});
    }
    if (RECEIVER_WARMUP) await warmUpReceiver(receiver);
    const connectionsBefore = receiver.connections;
    // All due in the one whole second that starts after creation surely finished.
    const createStarted = Date.now();
    const dueSecond = Math.ceil((Date.now() + 5_000 + BURST / 2) / 1000) * 1000;
    log(`creating ${fmt(BURST)} timers due in [${new Date(dueSecond).toISOString()}, +1 s)`);
    const ids: string[] = [];
    // Each creation batch falls due at one instant, the batches evenly spaced over the second (20 groups
    // of 1,000, 50 ms apart, by default): 20,000 in the second, never faster than that on average over
    // any 50 ms. Whole-second delays from each batch's creation time would place the groups wherever the
    // creation happened to be, so how many fell due in the first 200 ms varied from run to run (1,000 to
    // 7,000).
    const groups = Math.ceil(BURST / BATCH);
    await inBatches(BURST, async (size, offset) => {
      const dueAt = dueSecond + Math.floor(((offset / BATCH) * 1000) / groups);
      const seconds = (dueAt - Date.now()) / 1000;
      ids.push(
        ...(await api.timers.createMany(
          Array.from({ length: size }, () => ({
            hours: 0,
            minutes: 0,
            seconds,
            url: `${receiver.url}/t`,
          })),
        )),
      );
    });
    if (Date.now() > dueSecond) throw new Error('creating the burst took longer than the lead time; raise it');
    log(`created in ${Date.now() - createStarted} ms; waiting for deliveries`);
    // CPU profiles (--worker-prof) time samples on the monotonic clock, in microseconds.
    if (args['worker-prof'])
      log(
        `the due second starts at monotonic ${Number(process.hrtime.bigint() / 1000n) + (dueSecond - Date.now()) * 1000} us`,
      );
    const deadline = dueSecond + BURST_TIMEOUT_MS;
    // Counted only once enough requests came for every timer to have one: the receiver shares this
    // process, and a set of all paths every poll would take its CPU (and garbage) during the burst.
    log(
      `the due second starts ${workers.map((worker) => `${dueSecond - spawnedAt.get(worker.pid!)!} ms after worker ${worker.pid} was spawned`).join(', ')}`,
    );
    const stopSampling = sampleCpu(dueSecond, workers);
    const warmupRequests = receiver.requests.length;
    const burstPaths = () => new Set(receiver.requests.map((r) => r.path).filter(isBurstPath));
    while ((receiver.requests.length - warmupRequests < BURST || burstPaths().size < BURST) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const cpuSteps = stopSampling();
    const firstArrival = new Map<string, number>();
    let burstRequests = 0;
    for (const request of receiver.requests.filter((r) => isBurstPath(r.path))) {
      burstRequests++;
      if (!firstArrival.has(request.path)) firstArrival.set(request.path, request.at);
    }
    const timers = await api.db
      .collection(TIMERS_COLLECTION)
      .find({}, { projection: { dueAt: 1 } })
      .toArray();
    const lateness = timers
      .filter((timer) => firstArrival.has(`/t/${timer._id.toHexString()}`))
      .map((timer) => firstArrival.get(`/t/${timer._id.toHexString()}`)! - (timer.dueAt as Date).getTime())
      .sort((a, b) => a - b);
    const pct = (p: number) => lateness[Math.min(lateness.length - 1, Math.floor((p / 100) * lateness.length))];
    const arrivals = [...firstArrival.values()].sort((a, b) => a - b);
    // When timers fell due and when they arrived, in --step-ms steps from the start of the due second.
    const inSteps = (times: number[]) => {
      const steps = new Map<number, number>();
      for (const at of [...times].sort((a, b) => a - b)) {
        const step = Math.floor((at - dueSecond) / STEP_MS) * STEP_MS;
        steps.set(step, (steps.get(step) ?? 0) + 1);
      }
      return [...steps].map(([ms, n]) => `${ms}:${n}`).join(' ');
    };
    log(`due by ms after the due second: ${inSteps(timers.map((t) => (t.dueAt as Date).getTime()))}`);
    log(`arrivals by ms after the due second: ${inSteps(arrivals)}`);
    log(cpuSteps);
    const spanS = (arrivals[arrivals.length - 1] - Math.max(dueSecond, arrivals[0])) / 1000;
    rows.push([
      `burst: ${fmt(BURST)} timers due in one second, delivered (${WORKERS} worker process${WORKERS > 1 ? 'es' : ''}, ${args['worker-build']}, ${WARMUP ? `warmed up by ${fmt(WARMUP)} timers` : 'cold'} (its own sending warm-up: ${fmt(config.TIMERS_DELIVERY_WARMUP_POSTS)} POSTs at start), lookahead ${fmt(Number(args.lookahead))} ms, ${args.concurrency} in flight; receiver ${RECEIVER_WARMUP ? `warmed up by ${fmt(RECEIVER_WARMUP)} requests` : 'cold'})`,
      `${fmt(firstArrival.size)} (${fmt(burstRequests - firstArrival.size)} duplicates)`,
      `all, 0 duplicates`,
    ]);
    rows.push(['burst: deliveries/s (first to last arrival)', fmt(firstArrival.size / Math.max(spanS, 0.001)), '']);
    rows.push([
      'burst: lateness p50 / p99 / max',
      `${fmt(pct(50))} / ${fmt(pct(99))} / ${fmt(lateness[lateness.length - 1] ?? NaN)} ms`,
      'p99 < 250 ms',
    ]);
    // Outcomes are recorded after the POSTs, off the delivery path; how far MongoDB got meanwhile.
    const recorded = await api.db.collection(TIMERS_COLLECTION).countDocuments({ status: 'delivered' });
    rows.push([
      'burst: delivered outcomes recorded in MongoDB when the last POST arrived',
      `${fmt(recorded)} of ${fmt(BURST)}`,
      '',
    ]);
    log(
      `ids created: ${ids.length}; receiver connections (warm-up included): ${receiver.connections - connectionsBefore}`,
    );
  } finally {
    // Killed, not closed: on FerretDB recording the remaining outcomes would take many minutes.
    await Promise.all(
      workers.map(async (worker) => {
        if (!args['worker-prof']) return worker.kill('SIGKILL');
        worker.kill('SIGUSR2');
        await new Promise((resolve) => worker.once('exit', resolve));
      }),
    );
    await api.db.dropDatabase();
    await api.close();
    await receiver.stop();
  }
}

async function main(): Promise<void> {
  const redis = new Redis(redisUrl);
  log(`Redis ${redisUrl}, MongoDB ${mongoUrl}`);
  // A part given a count of 0 is skipped (e.g. `--timers 0 --baseline 0` runs the burst alone).
  if (TIMERS) await creation(redis);
  if (BASELINE) await naiveBaseline(redis);
  if (BURST) await burst();
  await redis.quit();
  console.log('\n| measurement | result | target |\n|---|---|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
