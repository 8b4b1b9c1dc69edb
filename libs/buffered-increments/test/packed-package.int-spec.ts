// The published form of this lib, used as a stranger would: `npm pack` of the built package, installed
// from the tarball (with its peer dependencies, from the npm cache when it has them) into a NestJS app in
// a temporary folder that has no path aliases and nothing of this repository, compiled with tsc against
// the package's type declarations, and run against the Redis and MongoDB `npm test` provides.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { MongoClient } from 'mongodb';
import { FLUSH_QUEUE } from '@bufferq/buffered-increments';
import { eventually, testServices, uniqueName } from '@bufferq/testing';

const ROOT = join(__dirname, '..', '..', '..');
const LIB = join(__dirname, '..');
const manifest = JSON.parse(readFileSync(join(LIB, 'package.json'), 'utf8'));

/** What the app installs next to the tarball: the peers (and what a NestJS app has anyway), at this repo's versions. */
const APP_DEPENDENCIES = [
  '@nestjs/common',
  '@nestjs/core',
  '@nestjs/bullmq',
  'bullmq',
  'ioredis',
  'mongodb',
  'reflect-metadata',
  'rxjs',
  '@types/node',
];

const versionInRepo = (name: string): string =>
  JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

describe('@bufferq/buffered-increments as a published package', () => {
  const work = mkdtempSync(join(tmpdir(), 'bufferq-package-'));
  const app = join(work, 'consumer-app');
  let tarball: string;

  beforeAll(() => {
    run(process.execPath, [join(LIB, 'build-package.js'), '--pack', work], ROOT);
    tarball = join(
      work,
      readdirSync(work).find((file) => file.endsWith('.tgz'))!,
    );
    cpSync(join(__dirname, 'fixtures', 'consumer-app'), app, { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer-app', version: '1.0.0', private: true }));
    run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        tarball,
        ...APP_DEPENDENCIES.map((name) => `${name}@${versionInRepo(name)}`),
      ],
      app,
    );
    // Type-checks the app against the package's declarations (and theirs against the peers').
    run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', app], app);
  }, 180_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('holds compiled JavaScript, type declarations and the Lua scripts, and imports no other @bufferq lib', () => {
    const files = run('tar', ['-tzf', tarball], work)
      .split('\n')
      .filter(Boolean)
      .map((file) => file.replace(/^package\//, ''));
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'CHANGELOG.md']));
    const main = manifest.exports['.'].default.replace(/^\.\//, '');
    expect(files).toContain(main);
    expect(files).toContain(manifest.exports['.'].types.replace(/^\.\//, ''));
    const scripts = readdirSync(join(LIB, 'src', 'scripts')).filter((file) => file.endsWith('.lua'));
    expect(scripts.length).toBeGreaterThan(0);
    for (const script of scripts) expect(files).toContain(join('lib', 'buffered-increments', 'src', 'scripts', script));
    expect(files.filter((file) => /\.(spec|int-spec)\.|\.ts$/.test(file) && !file.endsWith('.d.ts'))).toEqual([]);

    const installed = join(app, 'node_modules', '@bufferq', 'buffered-increments');
    const code = files
      .filter((file) => /\.(js|d\.ts)$/.test(file))
      .map((file) => readFileSync(join(installed, file), 'utf8'));
    expect(code.filter((text) => /(require\(|from |import\()\s*["']@bufferq\//.test(text))).toEqual([]);
  });

  it('declares its peers, its one runtime dependency and a CHANGELOG entry for its version', () => {
    expect(Object.keys(manifest.peerDependencies).sort()).toEqual(
      ['@nestjs/bullmq', '@nestjs/common', '@nestjs/core', 'bullmq', 'ioredis', 'mongodb'].sort(),
    );
    expect(Object.keys(manifest.dependencies)).toEqual(['cluster-key-slot']);
    expect(manifest.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(readFileSync(join(LIB, 'CHANGELOG.md'), 'utf8')).toContain(`## [${manifest.version}]`);
  });

  it('resolves from the app’s node_modules, not from this repository', () => {
    // Asked of Node in the app's folder (Jest's own resolver would apply this repo's path aliases).
    const resolved = run(process.execPath, ['-p', "require.resolve('@bufferq/buffered-increments')"], app).trim();
    expect(realpathSync(resolved).startsWith(realpathSync(join(app, 'node_modules')))).toBe(true);
    expect(existsSync(join(app, 'dist', 'main.js'))).toBe(true);
  });

  it('lets a NestJS app inject a producer whose increments a BullMQ worker flush writes into MongoDB', async () => {
    const { redisUrl, mongoUrl } = testServices();
    const dbName = uniqueName('package_app');
    const queuePrefix = uniqueName('package_queues');
    let child: ChildProcess | undefined;
    const mongo = await new MongoClient(mongoUrl).connect();
    const flushQueue = new Queue(FLUSH_QUEUE, {
      connection: { url: redisUrl },
      prefix: queuePrefix,
    });
    try {
      child = spawn(process.execPath, [join(app, 'dist', 'main.js')], {
        cwd: app,
        env: {
          PATH: process.env.PATH,
          REDIS_URL: redisUrl,
          MONGO_URL: mongoUrl,
          MONGO_DB: dbName,
          QUEUE_PREFIX: queuePrefix,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      expect(await eventually(() => output.includes('recorded') || child!.exitCode !== null, 30_000)).toBe(true);
      expect({ exitCode: child.exitCode, output }).toEqual({ exitCode: null, output: 'recorded\n' });

      const pages = mongo.db(dbName).collection<{ _id: string; visits?: number }>('page_views');
      const flushed = await eventually(async () => {
        const home = await pages.findOne({ _id: '/home' });
        return home?.visits === 3 && (await pages.findOne({ _id: '/pricing' }))?.visits === 1;
      }, 20_000);
      expect({ flushed, output }).toEqual({ flushed: true, output: 'recorded\n' });
      expect(await pages.findOne({ _id: '/home' }, { projection: { _id: 0, _bmiMarkers: 0 } })).toEqual({
        visits: 3,
        secondsOnPage: 18,
        longestVisit: 10,
      });
      expect(await pages.findOne({ _id: '/pricing' }, { projection: { _id: 0, _bmiMarkers: 0 } })).toEqual({
        visits: 1,
        secondsOnPage: 7,
        longestVisit: 7,
      });
      // The app writes nothing itself (its producer only buffers): the worker's flush jobs did, and
      // between them they applied at least the six fields the visits touched (the last one completes a moment
      // after its MongoDB write).
      const flushedFields = async () =>
        (await flushQueue.getCompleted()).reduce((sum, job) => sum + (job.returnvalue as { fields: number }).fields, 0);
      expect(await eventually(async () => (await flushedFields()) >= 6, 10_000)).toBe(true);

      // Nest closes the app (the worker finishes its flush) and then ends the process with the signal.
      const exit = new Promise((resolve) => child!.once('exit', (code, signal) => resolve({ code, signal, output })));
      child.kill('SIGTERM');
      expect(await exit).toEqual({ code: null, signal: 'SIGTERM', output: 'recorded\n' });
    } finally {
      if (child?.exitCode === null) child.kill('SIGKILL');
      await flushQueue.obliterate({ force: true }).catch(() => undefined);
      await flushQueue.close();
      await mongo.db(dbName).dropDatabase();
      await mongo.close();
    }
  });
});
