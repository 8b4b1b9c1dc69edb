// npm run bench:http — increments over HTTP on loopback against bare endpoints that do nothing, in the
// same run and on the same machine: Fastify alone (the reference of the targets: the api at >= 50% of
// it, >= 40% with rate limiting) and NestJS on the Fastify adapter (what the framework's own pipeline
// costs). Then the batch form, 1,000 increments per request, in increments per second. Each server runs
// in its own process; the load generator (autocannon) runs here. BENCH_DURATION_S (default 10) and
// BENCH_CONNECTIONS (default 50).
import { ChildProcess, spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { freePort } from '@bufferq/testing';

const root = join(__dirname, '..');
const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const tsNode = ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register'];

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
}

/** Batch bodies of BATCH increments over 100,000 keys, made ahead so the load generator only sends them. */
const BATCH = 1_000;
const batchBodies = Array.from({ length: 64 }, (_, body) =>
  JSON.stringify({
    increments: Array.from({ length: BATCH }, (_, i) => ({
      key: `key-${(body * BATCH + i * 7919) % 100_000}`,
      value: 1 + ((body + i) % 9),
    })),
  }),
);

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

async function start(args: string[], env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
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
    },
  });
  const url = `http://127.0.0.1:${port}/api/v1/increment`;
  await waitFor(url, child);
  return { url, child };
}

async function measure(
  name: string,
  url: string,
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
  const result = await run(durationS);
  return {
    name,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    perRequest: form === 'batch' ? BATCH : 1,
  };
}

async function main(): Promise<void> {
  const db = `bench_http_${Date.now()}`;
  const rows: Row[] = [];
  const servers: ChildProcess[] = [];
  try {
    const bare = await start(['-e', BARE_SERVER], {});
    servers.push(bare.child);
    rows.push(await measure('bare Fastify endpoint (parses JSON, answers 202)', bare.url));
    bare.child.kill('SIGTERM');

    const bareNest = await start([...tsNode, 'bench/http/bare-nest-server.ts'], {});
    servers.push(bareNest.child);
    rows.push(await measure('bare NestJS endpoint, Fastify adapter (echoes the body, answers 202)', bareNest.url));
    bareNest.child.kill('SIGTERM');

    const api = await start([...tsNode, 'apps/api/src/main.ts'], { MONGO_DB: db, RATE_LIMIT_MAX: '0' });
    servers.push(api.child);
    rows.push(await measure('POST /api/v1/increment (durable in Redis)', api.url));
    rows.push(
      await measure(`POST /api/v1/increment, batch form (${BATCH} increments per request)`, api.url, 'POST', 'batch'),
    );
    // Where the time goes: the same app on a route that touches no datastore (guards, hooks, logger).
    rows.push(
      await measure(
        'GET /health on the same app (no datastore)',
        api.url.replace('/api/v1/increment', '/health'),
        'GET',
      ),
    );
    api.child.kill('SIGTERM');

    const limited = await start([...tsNode, 'apps/api/src/main.ts'], { MONGO_DB: db, RATE_LIMIT_MAX: '1000000000' });
    servers.push(limited.child);
    rows.push(await measure('POST /api/v1/increment + Redis rate limiting', limited.url));
    limited.child.kill('SIGTERM');
  } finally {
    for (const child of servers) if (child.exitCode === null) child.kill('SIGKILL');
  }

  const [bareFastify, bareNest] = rows.map((row) => row.rps);
  const share = (rps: number, of: number) => `${Math.round((rps / of) * 100)}%`;
  console.log(
    `\nHTTP increments, ${connections} connections, ${durationS} s each, loopback, ${cpus().length} CPU cores, load average ${loadavg()[0].toFixed(2)}\n`,
  );
  console.log(
    '| endpoint | requests/s | increments/s | p50 ms | p99 ms | vs bare Fastify | vs bare NestJS | non-2xx |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const row of rows) {
    console.log(
      `| ${row.name} | ${Math.round(row.rps).toLocaleString('en-US')} | ${Math.round(row.rps * row.perRequest).toLocaleString('en-US')} | ${row.p50} | ${row.p99} | ${share(row.rps, bareFastify)} | ${share(row.rps, bareNest)} | ${row.non2xx} |`,
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
