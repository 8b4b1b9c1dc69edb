// The README's run command, `npm start` (tools/run-local.js), on this machine as a newcomer runs it: no
// REDIS_URL or MONGO_URL, so it starts its own Redis and MongoDB-wire server, builds, starts the api and
// the worker, and prints the URLs. Then an increment goes all the way to MongoDB, Ctrl-C (SIGTERM) stops
// everything, and a second start finds the data again.
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { eventually, uniqueName } from '@bufferq/testing';

const ROOT = join(__dirname, '..');
const STARTED = /Press Ctrl-C to stop\./;

/**
 * A free port below the kernel's ephemeral range (32768 and up on Linux): the servers run-local starts
 * take theirs from that range, so they cannot grab the api's port between this check and the api's listen.
 */
async function freeApiPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer()
        .once('error', () => resolve(false))
        .listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

interface RunningSystem {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `node tools/run-local.js` and resolves once it printed its URLs. */
async function startSystem(env: NodeJS.ProcessEnv, args: string[] = []): Promise<RunningSystem> {
  const child = spawn(process.execPath, [join(ROOT, 'tools', 'run-local.js'), ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own, as a shell gives a foreground command: Ctrl-C can be sent to all of it.
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const started = await eventually(() => STARTED.test(output) || child.exitCode !== null, 240_000, 250);
  if (!started || child.exitCode !== null) {
    child.kill('SIGKILL');
    throw new Error(`npm start did not come up:\n${output.slice(-3000)}`);
  }
  return { child, output: () => output, exited };
}

describe('npm start (tools/run-local.js)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bufferq-run-local-'));
  const running: ChildProcess[] = [];
  let env: NodeJS.ProcessEnv;
  let base: string;

  beforeAll(async () => {
    const port = await freeApiPort();
    base = `http://localhost:${port}`;
    env = {
      ...process.env,
      PORT: String(port),
      MONGO_DB: uniqueName('run_local'),
      COUNTERS_FLUSH_INTERVAL_MS: '300',
      BUFFERQ_LOCAL_DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      METRICS_PORT: String(await freeApiPort()),
      NODE_ENV: 'development',
    };
    // As on a fresh machine: no servers given, so it starts its own.
    delete env.REDIS_URL;
    delete env.MONGO_URL;
  });

  afterAll(() => {
    for (const child of running) if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts the whole system with its own servers, prints the URLs, flushes to MongoDB, stops on SIGTERM and on Ctrl-C (its servers last) and keeps the data', async () => {
    const first = await startSystem(env);
    running.push(first.child);
    // The summary names each URL once (a URL is followed by a space, a bracket or the line's end).
    const urls = ['/api/v1/increment', '/docs', '/admin/queues', '/health', '/health/ready', '/metrics'].map(
      (path) => `${base}${path}`,
    );
    urls.push(`http://localhost:${env.METRICS_PORT}/metrics`);
    for (const url of urls) {
      const mentions = first.output().match(new RegExp(`${url.replace(/[.]/g, '\\.')}(?=[\\s(]|$)`, 'gm')) ?? [];
      expect({ url, mentions: mentions.length }).toEqual({ url, mentions: 1 });
    }
    // In development the apps' JSON log lines are printed for a person.
    const lines = first.output().split('\n');
    expect(lines.filter((line) => line.startsWith('{'))).toEqual([]);
    expect(first.output()).toMatch(
      /^\[[\d:.]+\] INFO: api \[NestApplication\] Nest application successfully started$/m,
    );
    const mongoUrl = /MongoDB-wire server \(\w+\) at (mongodb:\/\/\S+)/.exec(first.output())?.[1];
    expect(mongoUrl).toBeDefined();

    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/docs`)).status).toBe(200);
    const post = await fetch(`${base}/api/v1/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'visits', value: 41 }),
    });
    expect(post.status).toBe(202);
    await fetch(`${base}/api/v1/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'visits', value: 1 }),
    });

    // The worker it started flushes the buffer into the MongoDB-wire server it started.
    const mongo = await new MongoClient(mongoUrl!).connect();
    try {
      const counters = mongo.db(env.MONGO_DB).collection('counters');
      expect(
        await eventually(async () => (await counters.findOne({ _id: 'visits' as never }))?.value === 42, 20_000),
      ).toBe(true);
    } finally {
      await mongo.close();
    }

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain('stopping the local Redis and MongoDB-wire server');
    await expect(fetch(`${base}/health`)).rejects.toThrow();

    // A second start (no rebuild) finds the counter in the data it kept.
    const second = await startSystem(env, ['--no-build', '--json-logs']);
    running.push(second.child);
    // --json-logs: the lines stay as the apps write them, for a log collector.
    expect(second.output()).toMatch(/^\{"level":30,.*"msg":"Nest application successfully started"/m);
    const read = await fetch(`${base}/api/v1/increment/visits`);
    expect(await read.json()).toEqual({ key: 'visits', value: 42 });

    // Ctrl-C in a terminal: SIGINT to the whole process group. The servers run-local started must outlive
    // the apps' graceful stop (the worker's last flush), so only run-local stops them, last.
    await fetch(`${base}/api/v1/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'visits', value: 8 }),
    });
    const interruptedAt = Date.now();
    process.kill(-second.child.pid!, 'SIGINT');
    expect(await second.exited).toBe(0);
    expect(Date.now() - interruptedAt).toBeLessThan(20_000);
    const afterInterrupt = second.output().slice(second.output().indexOf('stopping the api'));
    expect(afterInterrupt).not.toMatch(/ECONNREFUSED/);
  }, 600_000);
});
