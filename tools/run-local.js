#!/usr/bin/env node
'use strict';
// `npm start`: runs the whole system on this machine without Docker. When REDIS_URL / MONGO_URL are not
// set it starts a local Redis (append-only file on) and a MongoDB-wire server whose data is kept in
// BUFFERQ_LOCAL_DATA_DIR (default BUFFERQ_CACHE_DIR/local-data) between runs; then builds and starts one
// api and one worker.
// Ctrl-C (or SIGTERM) stops the apps gracefully (the worker finishes its flush), then the servers.
// In development (NODE_ENV unset or `development`) the apps' JSON log lines are printed readable and, on a
// terminal, colored (pino-pretty); elsewhere, or with --json-logs, they stay JSON as the apps write them.
// Flags: --no-build (use the existing dist/), --json-logs.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { setTimeout, clearTimeout } = require('node:timers');
const { CACHE_DIR, startRedis, startMongo } = require('./local-services');
const { prettyLogStream } = require('./pretty-logs');

const ROOT = path.join(__dirname, '..');
const API_ENTRY = path.join(ROOT, 'dist', 'apps', 'api', 'src', 'main.js');
const WORKER_ENTRY = path.join(ROOT, 'dist', 'apps', 'worker', 'src', 'main.js');

function log(message) {
  process.stdout.write(`[run-local] ${message}\n`);
}

async function waitForHealth(url, child, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the api exited with code ${child.exitCode} before answering`);
    try {
      if ((await globalThis.fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

function stopChild(child, timeoutMs = 30_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function main() {
  const servers = [];
  const children = [];
  let stopping = false;
  const env = { ...process.env };
  env.PORT ??= '3000';
  env.METRICS_PORT ??= '9464';
  env.NODE_ENV ??= 'development';
  const pretty = env.NODE_ENV === 'development' && !process.argv.includes('--json-logs');

  const stopAll = async (code) => {
    if (stopping) return;
    stopping = true;
    log('stopping the api and the worker (the worker finishes its current flush) ...');
    await Promise.all(children.map((child) => stopChild(child)));
    if (servers.length) log('stopping the local Redis and MongoDB-wire server (their data stays for the next run)');
    await Promise.all(servers.map((server) => server.stop()));
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  try {
    const dataDir = env.BUFFERQ_LOCAL_DATA_DIR || path.join(CACHE_DIR, 'local-data');
    if (!env.REDIS_URL) {
      const redis = await startRedis({ appendOnly: true, dataDir: path.join(dataDir, 'redis'), ownProcessGroup: true });
      servers.push(redis);
      env.REDIS_URL = redis.url;
      log(`started Redis (append-only) at ${redis.url}`);
    }
    if (!env.MONGO_URL) {
      const mongo = await startMongo({ dataDir: path.join(dataDir, 'mongo'), ownProcessGroup: true });
      servers.push(mongo);
      env.MONGO_URL = mongo.url;
      log(`started a MongoDB-wire server (${mongo.kind}) at ${mongo.url}`);
    }

    if (!process.argv.includes('--no-build') || !fs.existsSync(API_ENTRY)) {
      // Only what it runs: `npm run build` also builds the admin CLI, which `npx bufferq` runs from source here.
      for (const app of ['api', 'worker']) {
        log(`building the ${app} (nest build ${app}) ...`);
        const build = spawnSync('npx', ['nest', 'build', app], { cwd: ROOT, stdio: 'inherit', env });
        if (build.status !== 0) throw new Error(`nest build ${app} failed`);
      }
    }

    for (const [name, entry] of [
      ['api', API_ENTRY],
      ['worker', WORKER_ENTRY],
    ]) {
      const child = spawn(process.execPath, [entry], {
        cwd: ROOT,
        env,
        stdio: ['inherit', pretty ? 'pipe' : 'inherit', 'inherit'],
      });
      if (pretty) child.stdout.pipe(prettyLogStream(name));
      child.once('exit', (code, signal) => {
        if (stopping) return;
        log(`the ${name} exited unexpectedly (${signal ?? `code ${code}`}); stopping everything`);
        void stopAll(1);
      });
      children.push(child);
    }

    const base = `http://localhost:${env.PORT}`;
    await waitForHealth(`${base}/health`, children[0]);
    const boardUser = env.BOARD_USER ?? 'admin';
    // Each URL once: what a person opens or curls next.
    log('');
    log(`Counters   ${base}/api/v1/increment   (POST {"key":"k","value":1}; GET .../k reads it)`);
    log(`API docs   ${base}/docs`);
    log(`Dashboard  ${base}/admin/queues   (user ${boardUser}; password BOARD_PASSWORD, default admin)`);
    log(`Health     ${base}/health   ${base}/health/ready`);
    log(`Metrics    ${base}/metrics (api)   http://localhost:${env.METRICS_PORT}/metrics (worker)`);
    log('Admin CLI  npx bufferq --help');
    log('Press Ctrl-C to stop.');
  } catch (error) {
    process.stderr.write(`[run-local] ${error.stack || error}\n`);
    await stopAll(1);
  }
}

void main();
