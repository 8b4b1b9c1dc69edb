#!/usr/bin/env node
'use strict';
// Usage: node tools/with-services.js <command...>
// Runs the command with REDIS_URL, VALKEY_URL and MONGO_URL set. When they are not given, starts a local Redis,
// a Valkey and a MongoDB-wire server (mongod if on PATH, else FerretDB) on free loopback ports, and stops them
// after. Valkey is a second server for the Redis-facing tests, not a requirement: when it cannot be had (no pip,
// no network) the run goes on with a warning and VALKEY_URL unset, and those tests run on Redis alone.
const { spawn } = require('node:child_process');
const path = require('node:path');
const { startRedis, startMongo } = require('./local-services');

async function main() {
  const [command, ...args] = process.argv.slice(2);
  if (!command) throw new Error('usage: with-services <command...>');
  const started = [];
  const env = { ...process.env };
  try {
    if (!env.REDIS_URL) {
      const redis = await startRedis();
      started.push(redis);
      env.REDIS_URL = redis.url;
    }
    if (!env.VALKEY_URL) {
      try {
        const valkey = await startRedis({ server: 'valkey' });
        started.push(valkey);
        env.VALKEY_URL = valkey.url;
      } catch (error) {
        process.stderr.write(
          `[with-services] WARNING: no Valkey for this run, VALKEY_URL stays unset (tests run on Redis only): ${error.message}\n`,
        );
      }
    }
    if (!env.MONGO_URL) {
      const mongo = await startMongo();
      started.push(mongo);
      env.MONGO_URL = mongo.url;
    }
    process.stderr.write(
      `[with-services] REDIS_URL=${env.REDIS_URL} VALKEY_URL=${env.VALKEY_URL ?? '(unset)'} MONGO_URL=${env.MONGO_URL}\n`,
    );
    env.PATH = `${path.join(__dirname, '..', 'node_modules', '.bin')}${path.delimiter}${env.PATH}`;
    const child = spawn(command, args, { stdio: 'inherit', env });
    const forward = (signal) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const code = await new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
    process.exitCode = code;
  } finally {
    await Promise.all(started.map((server) => server.remove()));
  }
}

main().catch((error) => {
  process.stderr.write(`[with-services] ${error.stack || error}\n`);
  process.exit(1);
});
