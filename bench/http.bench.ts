// npm run bench:http — increments over HTTP on loopback against bare endpoints that do nothing, in the
// same run and on the same machine: Fastify alone (the reference of the targets: the api at >= 50% of
// it, >= 40% with rate limiting) and NestJS on the Fastify adapter (what the framework's own pipeline
// costs). Then the batch form, 1,000 increments per request, in increments per second, beside its
// ceiling: the api's producer alone (`incrementAll` with the same batches, no HTTP). Each server is one
// Node process (no cluster) on the project's one Fastify; the api and the bare NestJS server run compiled
// to JavaScript, as the image runs the api (ts-node would load Node's `domain` module into them, which
// bare Fastify, plain JavaScript, does not pay). The load generator (autocannon) runs here.
// Beside each server's CPU per request, Redis's (the server's `INFO cpu`): on 2 cores, the two add up.
// BENCH_DURATION_S (default 10), BENCH_CONNECTIONS (default 50), BENCH_ROWS (a comma-separated subset of
// fastify,nest,increment,batch,producer,health,limited), BENCH_PROFILE_DIR (the api's `node --cpu-prof` output).
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { freePort } from '@bufferq/testing';
import { BATCH, batchBodies } from './http/batch-bodies';

const root = join(__dirname, '..');
const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const rowsWanted = new Set(
  (process.env.BENCH_ROWS ?? 'fastify,nest,increment,batch,producer,health,limited').split(','),
);
/** The Redis every api row writes to, for its CPU time. */
const redisAdmin = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true });
const profileDir = process.env.BENCH_PROFILE_DIR;

// A Fastify 5 server with one POST route that parses the JSON body and answers 202: the framework's floor.
const BARE_SERVER = `
const fastify = require('fastify')({ logger: false, bodyLimit: 1024 * 1024 });
fastify.post('/api/v1/increment', async (request, reply) => reply.code(202).send({ key: request.body.key, value: request.body.value }));
fastify.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
`;

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  /** Increments each request carries (the batch form), for increments per second. */
  perRequest: number;
  /** CPU time (user + system) the server process spent per request, µs; steadier than requests/s on a shared machine. */
  cpuUsPerRequest: number | undefined;
  /** Redis's CPU time per request over the same span, µs. */
  redisCpuUsPerRequest: number | undefined;
}

/**
 * The api and the bare NestJS server as JavaScript (tsc without type checks, the Lua scripts beside their
 * modules), run with `-r tsconfig-paths/register` over the output directory.
 */
function compileServers(): { dir: string; args: (entry: string) => string[] } {
  // Inside the checkout (dist/ is not versioned), so the output finds node_modules as the sources do.
  mkdirSync(join(root, 'dist'), { recursive: true });
  const dir = mkdtempSync(join(root, 'dist', 'bench-http-'));
  execFileSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', 'bench/http/tsconfig.json', '--outDir', dir, '--noCheck'],
    { cwd: root, stdio: 'inherit' },
  );
  cpSync(join(root, 'libs'), join(dir, 'libs'), {
    recursive: true,
    filter: (source) => !source.includes('node_modules') && (!source.includes('.') || source.endsWith('.lua')),
  });
  return {
    dir,
    args: (entry) => [
      ...(profileDir
        ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '-r', join(root, 'bench/http/exit-on-sigint.js')]
        : []),
      '-r',
      'tsconfig-paths/register',
      join(dir, entry),
    ],
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc; undefined where there is none. */
function cpuSecondsOf(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime and stime, fields 14 and 15 of the line (11 and 12 after the command), in clock ticks of 10 ms.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) the Redis server has used so far. */
async function redisCpuSeconds(): Promise<number> {
  const info = await redisAdmin.info('cpu');
  return ['used_cpu_user', 'used_cpu_sys'].reduce(
    (sum, name) => sum + Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0),
    0,
  );
}

async function waitFor(url: string, child: ChildProcess): Promise<void> {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
    if (child.exitCode !== null) throw new Error(`server for ${url} exited with ${child.exitCode}`);
    const answered = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"key":"warm","value":1}',
    }).then(
      (response) => response.status === 202,
      () => false,
    );
    if (answered) return;
  }
  throw new Error(`${url} did not answer`);
}

async function start(
  args: string[],
  env: Record<string, string>,
  baseUrl?: string,
): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, args, {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'development',
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      TS_NODE_PROJECT: join(root, 'tsconfig.json'),
      ...(baseUrl ? { TS_NODE_BASEURL: baseUrl } : {}),
    },
  });
  const url = `http://127.0.0.1:${port}/api/v1/increment`;
  await waitFor(url, child);
  return { url, child };
}

async function measure(
  name: string,
  { url, child }: { url: string; child: ChildProcess },
  method: 'POST' | 'GET' = 'POST',
  form: 'single' | 'batch' = 'single',
): Promise<Row> {
  let n = 0;
  const body = () =>
    form === 'batch' ? batchBodies[n++ % batchBodies.length] : JSON.stringify({ key: `key-${n++ % 1000}`, value: 1 });
  const run = (seconds: number) =>
    autocannon({
      url,
      method,
      connections,
      duration: seconds,
      headers: { 'content-type': 'application/json' },
      // 1,000 keys, as many clients counting different things would send.
      requests: method === 'POST' ? [{ setupRequest: (request) => ({ ...request, body: body() }) }] : undefined,
    });
  await run(2); // warm-up: JIT, connection pools, Redis script cache
  const cpuBefore = cpuSecondsOf(child.pid);
  const redisCpuBefore = await redisCpuSeconds();
  const result = await run(durationS);
  const cpuAfter = cpuSecondsOf(child.pid);
  const redisCpu = (await redisCpuSeconds()) - redisCpuBefore;
  const requests = result.requests.total;
  return {
    name,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    perRequest: form === 'batch' ? BATCH : 1,
    cpuUsPerRequest:
      cpuBefore === undefined || cpuAfter === undefined || requests === 0
        ? undefined
        : ((cpuAfter - cpuBefore) * 1e6) / requests,
    redisCpuUsPerRequest: requests === 0 ? undefined : (redisCpu * 1e6) / requests,
  };
}

/** The producer alone (bench/http/producer-batch.ts): `incrementAll` calls with the batch row's bodies. */
async function measureProducer(args: string[], env: Record<string, string>): Promise<Row> {
  const redisCpuBefore = await redisCpuSeconds();
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env, BENCH_DURATION_S: String(durationS), BENCH_CONNECTIONS: String(connections) },
    });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`producer exited with ${code}`))));
  });
  // Warm-up included: the child reports its own CPU, but Redis's is read around the whole run.
  const redisCpu = (await redisCpuSeconds()) - redisCpuBefore;
  const { calls, seconds, cpuSeconds } = JSON.parse(output.trim().split('\n').pop()!) as {
    calls: number;
    seconds: number;
    cpuSeconds: number;
  };
  return {
    name: `incrementAll alone, the same batches parsed in advance (${connections} concurrent calls, no HTTP)`,
    rps: calls / seconds,
    p50: Number.NaN,
    p99: Number.NaN,
    non2xx: 0,
    perRequest: BATCH,
    cpuUsPerRequest: (cpuSeconds * 1e6) / calls,
    redisCpuUsPerRequest: (redisCpu * 1e6) / (calls * ((durationS + 2) / durationS)),
  };
}

async function main(): Promise<void> {
  const db = `bench_http_${Date.now()}`;
  const rows: Row[] = [];
  const servers: ChildProcess[] = [];
  const compiled = compileServers();
  const fastifyVersion = (require('fastify/package.json') as { version: string }).version;
  const nestFastifyVersion = (
    require(require.resolve('fastify/package.json', { paths: [require.resolve('@nestjs/platform-fastify')] })) as {
      version: string;
    }
  ).version;
  const run = async (
    row: string,
    args: string[],
    env: Record<string, string>,
    measures: (server: { url: string; child: ChildProcess }) => Promise<void>,
  ) => {
    if (!rowsWanted.has(row)) return;
    const server = await start(args, env, args.includes('-e') ? undefined : compiled.dir);
    servers.push(server.child);
    await measures(server);
    server.child.kill('SIGINT');
    await new Promise((resolve) => (server.child.exitCode === null ? server.child.once('exit', resolve) : resolve(0)));
  };
  try {
    await run('fastify', ['-e', BARE_SERVER], {}, async (bare) => {
      rows.push(await measure('bare Fastify endpoint (parses JSON, answers 202)', bare));
    });
    await run('nest', compiled.args('bench/http/bare-nest-server.js'), {}, async (bareNest) => {
      rows.push(await measure('bare NestJS endpoint, Fastify adapter (echoes the body, answers 202)', bareNest));
    });
    const apiRows = ['increment', 'batch', 'producer', 'health'].filter((row) => rowsWanted.has(row));
    if (apiRows.length > 0)
      await run(
        apiRows[0],
        compiled.args('apps/api/src/main.js'),
        { MONGO_DB: db, RATE_LIMIT_MAX: '0' },
        async (api) => {
          if (rowsWanted.has('increment')) rows.push(await measure('POST /api/v1/increment (durable in Redis)', api));
          if (rowsWanted.has('batch'))
            rows.push(
              await measure(
                `POST /api/v1/increment, batch form (${BATCH} increments per request)`,
                api,
                'POST',
                'batch',
              ),
            );
          if (rowsWanted.has('producer'))
            rows.push(
              await measureProducer(compiled.args('bench/http/producer-batch.js'), {
                MONGO_DB: db,
                TS_NODE_PROJECT: join(root, 'tsconfig.json'),
                TS_NODE_BASEURL: compiled.dir,
              }),
            );
          // Where the time goes: the same app on a route that touches no datastore (guards, hooks, logger).
          if (rowsWanted.has('health'))
            rows.push(
              await measure(
                'GET /health on the same app (no datastore)',
                { ...api, url: api.url.replace('/api/v1/increment', '/health') },
                'GET',
              ),
            );
        },
      );
    await run(
      'limited',
      compiled.args('apps/api/src/main.js'),
      { MONGO_DB: db, RATE_LIMIT_MAX: '1000000000' },
      async (limited) => {
        rows.push(await measure('POST /api/v1/increment + Redis rate limiting', limited));
      },
    );
  } finally {
    for (const child of servers) if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(compiled.dir, { recursive: true, force: true });
    redisAdmin.disconnect();
  }

  const rpsOf = (prefix: string) => rows.find((row) => row.name.startsWith(prefix))?.rps;
  const [bareFastify, bareNest] = [rpsOf('bare Fastify'), rpsOf('bare NestJS')];
  const share = (rps: number, of: number | undefined) => (of ? `${Math.round((rps / of) * 100)}%` : '-');
  console.log(
    `\nHTTP increments, ${connections} connections, ${durationS} s each, loopback, ${cpus().length} CPU cores, load average ${loadavg()[0].toFixed(2)}; one process per server, Fastify ${fastifyVersion} (NestJS's adapter: ${nestFastifyVersion})\n`,
  );
  console.log(
    '| endpoint | requests/s | increments/s | p50 ms | p99 ms | vs bare Fastify | vs bare NestJS | server CPU µs/request | Redis CPU µs/request | non-2xx |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const micros = (value: number | undefined) => (value === undefined ? '-' : String(Math.round(value)));
  for (const row of rows) {
    console.log(
      `| ${row.name} | ${Math.round(row.rps).toLocaleString('en-US')} | ${Math.round(row.rps * row.perRequest).toLocaleString('en-US')} | ${Number.isNaN(row.p50) ? '-' : row.p50} | ${Number.isNaN(row.p99) ? '-' : row.p99} | ${share(row.rps, bareFastify)} | ${share(row.rps, bareNest)} | ${micros(row.cpuUsPerRequest)} | ${micros(row.redisCpuUsPerRequest)} | ${row.non2xx} |`,
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
