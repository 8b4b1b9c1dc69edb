// npm run bench:increments -- --cluster [--shards 1,2,3 --seconds 10 --callers 1000 --keys 10000 --server redis]
// One hot collection on a local Redis Cluster of three masters (started here), spread over S shards per row,
// each shard on its own master: the awaited increment() rate, each master's share of the Redis work while it
// ran (CPU from INFO cpu, time inside commands from INFO commandstats) and the rate at which the busiest one
// would be full, the buffer's fields and memory per master, an exact check of every document's buffered sum,
// and the drain of what was buffered (every shard flushing at once).
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { BufferedMongoIncrements } from '@bufferq/buffered-increments';
import { RedisServerKind, startPrivateRedisCluster, testServices, uniqueName } from '@bufferq/testing';

const KEY_PREFIX = 'bmi';
const WARM_UP_SECONDS = 1;

interface NodeWork {
  /** used_cpu_sys + used_cpu_user: everything the server process did (command parsing and replies too). */
  cpuSeconds: number;
  /** Time spent executing commands (INFO commandstats usec, summed over commands). */
  commandSeconds: number;
  /** Script calls (EVALSHA, EVAL): how many buffer calls the callers' increments travelled in. */
  calls: number;
}

interface Row {
  shards: number;
  placement: string;
  rate: number;
  perScriptCall: number;
  /** CPU the producing process used, in cores. */
  clientCore: number;
  /** Redis CPU (all masters) per increment. */
  redisMicrosPerIncrement: number;
  work: NodeWork[];
  seconds: number;
  /** The live hashes of the shards each master holds: fields and MEMORY USAGE bytes. */
  buffers: Array<{ fields: number; bytes: number }>;
  drained: number;
  drainSeconds: number;
  exact: boolean;
  load: string;
}

export async function runClusterBench(argv: string[]): Promise<void> {
  const { values: args } = parseArgs({
    args: argv.filter((arg) => arg !== '--cluster'),
    options: {
      shards: { type: 'string', default: '1,2,3' },
      seconds: { type: 'string', default: '10' },
      callers: { type: 'string', default: '1000' },
      keys: { type: 'string', default: '10000' },
      server: { type: 'string', default: 'redis' },
    },
  });
  const shardCounts = args.shards.split(',').map(Number);
  const seconds = Number(args.seconds);
  const callers = Number(args.callers);
  const keys = Number(args.keys);
  const server = args.server as RedisServerKind;

  const { mongoUrl } = testServices();
  const cluster = await startPrivateRedisCluster({ server, replicas: 0 });
  const masters = cluster
    .masters()
    .map((member) => member.port)
    .sort((a, b) => a - b);
  const nodes = masters.map((port) => new Redis(port, '127.0.0.1'));
  // Auto-pipelining sends the concurrent callers' commands to each node in shared writes.
  const redis = new Cluster(
    masters.map((port) => ({ host: '127.0.0.1', port })),
    { enableAutoPipelining: true },
  );
  const mongo = await new MongoClient(mongoUrl).connect();
  const db = mongo.db(uniqueName('bench_cluster'));
  const rows: Row[] = [];
  try {
    for (const shards of shardCounts) {
      const namespace = await namespaceOnDistinctNodes(redis, masters, shards);
      const shardNodes = await Promise.all(
        Array.from({ length: shards }, (_, s) => nodeOfTag(redis, masters, tagOf(namespace, shards, s))),
      );
      const collection = db.collection(`hot_${shards}`);
      const buffered = new BufferedMongoIncrements(collection, redis, 60_000, { namespace, shards, autoFlush: false });
      // Call i increments document k<i mod keys>, numbered across warm-up and run, so every total is known.
      let issued = 0;
      const incrementNext = () => buffered.increment(`k${issued++ % keys}`, 'n', 1);
      const loadBefore = loadavg()[0].toFixed(2);
      await runFor(WARM_UP_SECONDS, callers, incrementNext);
      const before = await Promise.all(nodes.map(nodeWork));
      const started = performance.now();
      const clientBefore = process.cpuUsage();
      const count = await runFor(seconds, callers, incrementNext);
      const client = process.cpuUsage(clientBefore);
      const elapsed = (performance.now() - started) / 1000;
      const after = await Promise.all(nodes.map(nodeWork));
      const loadAfter = loadavg()[0].toFixed(2);
      const work = after.map((sample, n) => ({
        cpuSeconds: sample.cpuSeconds - before[n].cpuSeconds,
        commandSeconds: sample.commandSeconds - before[n].commandSeconds,
        calls: sample.calls - before[n].calls,
      }));
      const buffers = await Promise.all(
        nodes.map(async (node, n) => {
          const onNode = { fields: 0, bytes: 0 };
          for (let s = 0; s < shards; s++) {
            if (shardNodes[s] !== masters[n]) continue;
            const live = `${KEY_PREFIX}:{${tagOf(namespace, shards, s)}}:live`;
            onNode.fields += await node.hlen(live);
            onNode.bytes += Number(await node.call('MEMORY', 'USAGE', live, 'SAMPLES', '0'));
          }
          return onNode;
        }),
      );
      const exact = await bufferHoldsEveryCall(buffered, keys, issued);
      if (!exact) process.exitCode = 1;
      buffered.destroy();

      // The drain itself (claims, reads, grouping, bulkWrites of every shard at once), not the server's
      // document writes: upserts are off and the collection is empty, so every update is sent but matches
      // nothing (FerretDB on SQLite writes new documents at a few dozen per second under this bench).
      const flusher = new BufferedMongoIncrements(collection, redis, 60_000, {
        namespace,
        shards,
        autoFlush: false,
        upsert: false,
      });
      const drainStarted = performance.now();
      const report = await flusher.flush();
      const drainSeconds = (performance.now() - drainStarted) / 1000;
      const left = (await flusher.stats()).bufferedFields;
      flusher.destroy();
      if (left !== 0 || report.fields !== Math.min(keys, issued)) {
        console.error(`${namespace}: the drain took ${report.fields} fields and left ${left}`);
        process.exitCode = 1;
      }
      rows.push({
        shards,
        placement: shardNodes.map((port, s) => `${s}→:${port}`).join(' '),
        rate: count / elapsed,
        perScriptCall:
          count /
          Math.max(
            1,
            work.reduce((sum, node) => sum + node.calls, 0),
          ),
        clientCore: (client.user + client.system) / 1e6 / elapsed,
        redisMicrosPerIncrement: (work.reduce((sum, node) => sum + node.cpuSeconds, 0) * 1e6) / count,
        work,
        seconds: elapsed,
        buffers,
        drained: report.fields,
        drainSeconds,
        exact,
        load: `${loadBefore} → ${loadAfter}`,
      });
    }
  } finally {
    await db.dropDatabase();
    await mongo.close();
    redis.disconnect();
    for (const node of nodes) node.disconnect();
    await cluster.remove();
  }
  printTable(rows, { server, seconds, callers, keys, masters, mongo: await mongoKind(mongoUrl) });
}

/** The hash tag of shard `s` of a buffer over `shards` shards (as the library names its keys). */
function tagOf(namespace: string, shards: number, s: number): string {
  return shards === 1 ? namespace : `${namespace}:${s}`;
}

/**
 * A fresh namespace whose shards sit on as many different masters as there are shards (up to the masters):
 * random names could put two shards on one node, which measures placement luck, not sharding. A deployment
 * gets the same by moving a shard's slot (`redis-cli --cluster reshard`) or by using many more shards than
 * masters.
 */
async function namespaceOnDistinctNodes(redis: Cluster, masters: number[], shards: number): Promise<string> {
  for (;;) {
    const namespace = uniqueName('hot');
    const owners = await Promise.all(
      Array.from({ length: shards }, (_, s) => nodeOfTag(redis, masters, tagOf(namespace, shards, s))),
    );
    if (new Set(owners).size === Math.min(shards, masters.length)) return namespace;
  }
}

async function nodeOfTag(redis: Cluster, masters: number[], tag: string): Promise<number> {
  const slot = (await redis.cluster('KEYSLOT', `{${tag}}`)) as number;
  const ranges = await redis.cluster('SLOTS');
  const owner = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1];
  if (owner === undefined || !masters.includes(owner)) throw new Error(`no master serves slot ${slot}`);
  return owner;
}

async function nodeWork(node: Redis): Promise<NodeWork> {
  const info = String(await node.call('INFO', 'cpu', 'commandstats'));
  const number = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  let commandSeconds = 0;
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    commandSeconds += Number(match[3]) / 1e6;
    if (match[1] === 'evalsha' || match[1] === 'eval') calls += Number(match[2]);
  }
  return { cpuSeconds: number('used_cpu_sys') + number('used_cpu_user'), commandSeconds, calls };
}

/** `callers` concurrent loops awaiting `call()` until `seconds` pass; returns the calls made. */
async function runFor(seconds: number, callers: number, call: () => Promise<void>): Promise<number> {
  const until = performance.now() + seconds * 1000;
  let count = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      for (; performance.now() < until; count++) await call();
    }),
  );
  return count;
}

/** Call i went to document k<i mod keys>: each document's buffered sum (across shards) must be its share. */
async function bufferHoldsEveryCall(buffered: BufferedMongoIncrements, keys: number, calls: number): Promise<boolean> {
  const expected = (k: number) => Math.floor(calls / keys) + (k < calls % keys ? 1 : 0);
  const held = await Promise.all(
    Array.from({ length: Math.min(keys, calls) }, (_, k) => buffered.readIncremented(`k${k}`, 'n')),
  );
  const wrong = held.filter((value, k) => Number(value) !== expected(k)).length;
  if (wrong > 0) console.error(`${buffered.namespace}: ${wrong} documents' buffered sums differ from the calls made`);
  return wrong === 0;
}

async function mongoKind(url: string): Promise<string> {
  const client = await new MongoClient(url).connect();
  const info = await client.db('admin').command({ buildInfo: 1 });
  await client.close();
  return 'ferretdbVersion' in info ? `FerretDB ${info.ferretdbVersion} (SQLite)` : `MongoDB ${info.version}`;
}

function printTable(
  rows: Row[],
  run: { server: string; seconds: number; callers: number; keys: number; masters: number[]; mongo: string },
): void {
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const pct = (part: number, whole: number) => `${whole > 0 ? Math.round((part / whole) * 100) : 0}%`;
  console.log(
    `\nbench:increments --cluster: one hot collection on a local ${run.server} Cluster of ${run.masters.length} masters ` +
      `(no replicas), ${fmt(run.callers)} concurrent callers in one process awaiting increment() over ` +
      `${fmt(run.keys)} documents (uniform), ${run.seconds} s per row after ${WARM_UP_SECONDS} s of warm-up, no ` +
      `flush meanwhile; then one flush() drains every shard at once into ${run.mongo} (updates match nothing). ` +
      `Node ${process.version}.\n`,
  );
  const nodeHeads = run.masters.map((port) => `:${port} CPU s (share)`);
  console.log(
    `| shards | shard → master | increments/s | increments per script call | ${nodeHeads.join(' | ')} | ` +
      `busiest master's core | increments/s at which it would be full | producer process's core | Redis CPU per increment | command time per master | buffered fields per master | ` +
      `live hash KiB per master | drain (all shards at once) | buffered sums | load average |`,
  );
  console.log(
    `|---:|---|---:|---:|${nodeHeads.map(() => '---:|').join('')}---:|---:|---:|---:|---|---|---|---|---|---|`,
  );
  for (const row of rows) {
    const cpu = row.work.map((node) => node.cpuSeconds);
    const cpuTotal = cpu.reduce((sum, value) => sum + value, 0);
    const command = row.work.map((node) => node.commandSeconds);
    const commandTotal = command.reduce((sum, value) => sum + value, 0);
    console.log(
      `| ${row.shards} | ${row.placement} | ${fmt(row.rate)} | ${row.perScriptCall.toFixed(1)} | ` +
        `${cpu.map((value) => `${value.toFixed(2)} (${pct(value, cpuTotal)})`).join(' | ')} | ` +
        `${pct(Math.max(...cpu), row.seconds)} | ${fmt(row.rate / (Math.max(...cpu) / row.seconds))} | ${pct(row.clientCore, 1)} | ${row.redisMicrosPerIncrement.toFixed(1)} µs | ` +
        `${command.map((value) => pct(value, commandTotal)).join(' / ')} | ` +
        `${row.buffers.map((buffer) => fmt(buffer.fields)).join(' / ')} | ` +
        `${row.buffers.map((buffer) => fmt(buffer.bytes / 1024)).join(' / ')} | ` +
        `${fmt(row.drained)} fields in ${row.drainSeconds.toFixed(2)} s | ${row.exact ? 'exact' : 'WRONG'} | ${row.load} |`,
    );
  }
}
