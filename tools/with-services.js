#!/usr/bin/env node
'use strict';
// Usage: node tools/with-services.js <command...>
// Runs the command with REDIS_URL and MONGO_URL set. When they are not given, starts a local Redis and a
// MongoDB-wire server (mongod if on PATH, else FerretDB) on free loopback ports, and stops them after.
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
    if (!env.MONGO_URL) {
      const mongo = await startMongo();
      started.push(mongo);
      env.MONGO_URL = mongo.url;
    }
    process.stderr.write(`[with-services] REDIS_URL=${env.REDIS_URL} MONGO_URL=${env.MONGO_URL}\n`);
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
