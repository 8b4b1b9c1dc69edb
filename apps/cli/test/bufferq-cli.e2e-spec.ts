// The admin CLI (`npx bufferq`) against the Redis and MongoDB `npm test` provides, wired exactly as its
// main.ts wires it: most commands run in-process through runAdminCli, one through the bin as a person
// runs it. Each test file run gets its own database (so its own counters buffer), timers key prefix and
// royalties queue name.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { INestApplicationContext } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Db, MongoClient, ObjectId } from 'mongodb';
import { BufferedMongoIncrements, FLUSH_QUEUE } from '@bufferq/buffered-increments';
import { EXIT, runAdminCli } from '@bufferq/admin-cli';
import { freePort, testServices, uniqueName } from '@bufferq/testing';

const ROOT = join(__dirname, '..', '..', '..');
const { redisUrl, mongoUrl } = testServices();
const env = {
  REDIS_URL: redisUrl,
  MONGO_URL: mongoUrl,
  MONGO_DB: uniqueName('cli'),
  TIMERS_REDIS_PREFIX: uniqueName('cli_timers'),
  ROYALTIES_QUEUE: uniqueName('cli_royalties'),
};

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `bufferq <args>` in-process with the CLI app's own context, built from `overrides` over `env`. */
async function bufferq(args: string[], overrides: Record<string, string> = {}): Promise<CliRun> {
  const saved = { ...process.env };
  Object.assign(process.env, env, overrides);
  jest.resetModules();
  // Both from the fresh module registry, so the context's services are the classes the commands ask for.
  const { createCliContext } = await import('../src/cli-app');
  const { runAdminCli: runFresh } = await import('@bufferq/admin-cli');
  let stdout = '';
  let stderr = '';
  try {
    const code = await runFresh(args, {
      createContext: createCliContext,
      stdout: (text) => (stdout += text),
      stderr: (text) => (stderr += text),
    });
    return { code, stdout, stderr };
  } finally {
    process.env = saved;
  }
}

async function bufferqJson<T>(args: string[]): Promise<T> {
  const run = await bufferq([...args, '--json']);
  expect({ code: run.code, stderr: run.stderr }).toEqual({ code: EXIT.ok, stderr: '' });
  return JSON.parse(run.stdout) as T;
}

describe('bufferq admin CLI', () => {
  let mongo: MongoClient;
  let db: Db;
  let redis: Redis;
  let counters: BufferedMongoIncrements;

  beforeAll(async () => {
    mongo = await new MongoClient(mongoUrl).connect();
    db = mongo.db(env.MONGO_DB);
    redis = new Redis(redisUrl);
    // A producer of the counters buffer, as the api holds one (same database, so the same namespace).
    counters = new BufferedMongoIncrements(db.collection('counters'), redis, 60_000, { autoFlush: false });
  });

  afterAll(async () => {
    counters.destroy();
    await db.dropDatabase();
    await mongo.close();
    redis.disconnect();
  });

  describe('help and usage, without any server', () => {
    const noServers = async (): Promise<INestApplicationContext> => {
      throw new Error('a help or usage answer must not connect');
    };
    const run = async (args: string[]) => {
      let stdout = '';
      let stderr = '';
      const code = await runAdminCli(args, {
        createContext: noServers,
        stdout: (text) => (stdout += text),
        stderr: (text) => (stderr += text),
      });
      return { code, stdout, stderr };
    };

    it('answers --help on every command and subcommand with its usage', async () => {
      const top = await run(['--help']);
      expect(top.code).toBe(EXIT.ok);
      for (const command of ['stats', 'flush', 'dead-letters', 'timers', 'queues'])
        expect(top.stdout).toContain(command);
      for (const args of [
        ['stats'],
        ['flush'],
        ['queues'],
        ['dead-letters'],
        ['dead-letters', 'list'],
        ['dead-letters', 'replay'],
        ['dead-letters', 'drop'],
        ['timers'],
        ['timers', 'stats'],
        ['timers', 'retry-failed'],
      ]) {
        const help = await run([...args, '--help']);
        expect({ args, code: help.code }).toEqual({ args, code: EXIT.ok });
        expect(help.stdout).toContain(`Usage: bufferq ${args.join(' ')}`);
        if (!['dead-letters', 'timers'].includes(args.join(' '))) expect(help.stdout).toContain('--json');
      }
    });

    it('refuses unknown commands, missing arguments and bad limits with exit code 2 and a hint', async () => {
      for (const args of [
        ['frobnicate'],
        ['flush'],
        ['dead-letters', 'list', 'counters', '--limit', '0'],
        ['stats', '--limit', '3'],
      ]) {
        const refused = await run(args);
        expect({ args, code: refused.code, stdout: refused.stdout }).toEqual({ args, code: EXIT.usage, stdout: '' });
        expect(refused.stderr).toMatch(/error: .+\n\(add --help for usage\)/);
      }
    });
  });

  it('shows buffered fields and the oldest pending age, flushes a collection now with its report, and shows it empty', async () => {
    await counters.increment('visits', 'value', 41);
    await counters.increment('visits', 'value', 1);
    await counters.increment('signups', 'value', 3);
    await new Promise((resolve) => setTimeout(resolve, 50));

    const before = await bufferqJson<Array<Record<string, unknown>>>(['stats']);
    expect(before).toEqual([
      {
        buffer: 'counters',
        collection: 'counters',
        bufferedFields: 2,
        oldestPendingAgeMs: expect.any(Number),
        deadLetters: 0,
      },
    ]);
    expect(before[0].oldestPendingAgeMs).toBeGreaterThanOrEqual(50);
    const table = await bufferq(['stats']);
    expect(table.stdout).toMatch(/^collection\s+buffered fields\s+oldest pending\s+dead letters\ncounters\s+2\s+\d/);

    const report = await bufferqJson<Record<string, unknown>>(['flush', 'counters']);
    expect(report).toMatchObject({ collection: 'counters', batches: 1, fields: 2, documents: 2, deadLetters: 0 });
    expect(await db.collection('counters').findOne({ _id: 'visits' as never })).toMatchObject({ value: 42 });
    expect(await db.collection('counters').findOne({ _id: 'signups' as never })).toMatchObject({ value: 3 });
    expect(await bufferqJson(['stats'])).toEqual([
      { buffer: 'counters', collection: 'counters', bufferedFields: 0, oldestPendingAgeMs: 0, deadLetters: 0 },
    ]);
    const text = await bufferq(['flush', 'counters']);
    expect(text).toEqual({
      code: EXIT.ok,
      stdout: expect.stringMatching(/^counters: flushed 0 fields into 0 documents in 0 batches/),
      stderr: '',
    });
  });

  it('names the known collections when asked to flush one the system does not buffer', async () => {
    const run = await bufferq(['flush', 'nope']);
    expect(run).toEqual({
      code: EXIT.usage,
      stdout: '',
      stderr: "bufferq: no buffered collection named 'nope' (known: counters)\n",
    });
    expect(JSON.parse((await bufferq(['flush', 'nope', '--json'])).stderr)).toEqual({
      error: "no buffered collection named 'nope' (known: counters)",
    });
  });

  it('lists dead letters, replays them into the buffer once their cause is fixed, and drops them only with --yes', async () => {
    // An $inc on a string is refused by MongoDB for good: a dead letter.
    await db.collection('counters').insertOne({ _id: 'broken' as never, value: 'not a number' });
    await counters.increment('broken', 'value', 5);
    expect(await bufferqJson(['flush', 'counters'])).toMatchObject({ deadLetters: 1 });

    const letters = await bufferqJson<Array<Record<string, unknown>>>(['dead-letters', 'list', 'counters']);
    expect(letters).toEqual([
      { batchId: expect.any(String), documentId: 'broken', fields: expect.any(Object), error: expect.any(String) },
    ]);
    expect((await bufferq(['dead-letters', 'list', 'counters'])).stdout).toMatch(
      /^document\s+fields\s+batch\s+error\nbroken\s+1\s/,
    );
    expect(await bufferqJson(['stats'])).toMatchObject([{ deadLetters: 1 }]);

    await db.collection('counters').updateOne({ _id: 'broken' as never }, { $set: { value: 10 } });
    expect(await bufferqJson(['dead-letters', 'replay', 'counters'])).toEqual({ collection: 'counters', replayed: 1 });
    expect(await bufferqJson(['flush', 'counters'])).toMatchObject({ fields: 1, deadLetters: 0 });
    expect(await db.collection('counters').findOne({ _id: 'broken' as never })).toMatchObject({ value: 15 });

    await db.collection('counters').updateOne({ _id: 'broken' as never }, { $set: { value: 'broken again' } });
    await counters.increment('broken', 'value', 1);
    await bufferqJson(['flush', 'counters']);
    const unconfirmed = await bufferq(['dead-letters', 'drop', 'counters']);
    expect(unconfirmed).toEqual({
      code: EXIT.usage,
      stdout: '',
      stderr: 'bufferq: dropping the dead letters of counters cannot be undone: add --yes\n',
    });
    expect(await counters.deadLetterCount()).toBe(1);
    expect(await bufferqJson(['dead-letters', 'drop', 'counters', '--yes'])).toEqual({
      collection: 'counters',
      dropped: 1,
    });
    expect(await counters.deadLetterCount()).toBe(0);
    expect((await bufferq(['dead-letters', 'list', 'counters'])).stdout).toBe('counters: no dead letters\n');
  });

  it('counts timers per status across tenants and sends every tenant’s failed timers again', async () => {
    const now = Date.now();
    const failed = (tenant?: string) => ({
      _id: new ObjectId(),
      ...(tenant ? { tenant } : {}),
      url: 'https://example.com/hook',
      dueAt: new Date(now - 60_000),
      runAt: new Date(now - 60_000),
      status: 'failed',
      attempts: 5,
      lastError: 'HTTP 500',
      createdAt: new Date(now - 120_000),
      updatedAt: new Date(now - 30_000),
    });
    const timers = [failed(), failed('tenant-digest-a')];
    await db
      .collection('timers')
      .insertMany([
        ...timers,
        { ...failed(), status: 'delivered', deliveredAt: new Date(now - 1_000) },
        { ...failed(), status: 'pending', dueAt: new Date(now + 3_600_000), runAt: new Date(now + 3_600_000) },
      ] as never[]);

    const before = await bufferqJson<{ byStatus: Record<string, number> }>(['timers', 'stats']);
    expect(before.byStatus).toEqual({ pending: 1, delivering: 0, delivered: 1, failed: 2, cancelled: 0 });
    expect((await bufferq(['timers', 'stats'])).stdout).toMatch(/^status\s+timers\npending\s+1\n/);

    const retried = await bufferqJson<{ retried: number; ids: string[] }>(['timers', 'retry-failed']);
    expect(retried.retried).toBe(2);
    expect(retried.ids.sort()).toEqual(timers.map((timer) => timer._id.toHexString()).sort());
    const stored = await db
      .collection('timers')
      .find({ _id: { $in: timers.map((timer) => timer._id) } })
      .toArray();
    expect(stored.map((timer) => [timer.status, timer.attempts])).toEqual([
      ['pending', 0],
      ['pending', 0],
    ]);
    const after = await bufferqJson<{ byStatus: Record<string, number>; schedule: Record<string, number> }>([
      'timers',
      'stats',
    ]);
    expect(after.byStatus).toMatchObject({ failed: 0, delivering: 2 });
    // Due now, in the due index for a worker to claim (none runs here).
    expect(after.schedule).toMatchObject({ scheduled: 2, overdue: 2 });
    expect(await bufferqJson(['timers', 'retry-failed'])).toEqual({ retried: 0, ids: [] });
  });

  it('lists every queue the system uses with its depths', async () => {
    const listed = await bufferqJson<Array<Record<string, unknown>>>(['queues']);
    // The flush queue, the timers' delivery queue (named after TIMERS_REDIS_PREFIX) and the royalties builds.
    const named = (depths: typeof listed, part: string) => depths.filter((queue) => String(queue.queue).includes(part));
    expect(named(listed, FLUSH_QUEUE)).toHaveLength(1);
    expect(named(listed, env.TIMERS_REDIS_PREFIX)).toHaveLength(1);
    const [builds] = named(listed, env.ROYALTIES_QUEUE);
    expect(builds).toMatchObject({ prefix: 'bull', waiting: 0 });

    const royalties = new Queue(String(builds.queue), { connection: { url: redisUrl }, prefix: String(builds.prefix) });
    try {
      await royalties.add('build', { buildId: 'cli-test' });
      expect(named(await bufferqJson(['queues']), env.ROYALTIES_QUEUE)).toEqual([
        {
          queue: builds.queue,
          prefix: 'bull',
          paused: false,
          waiting: 1,
          active: 0,
          delayed: 0,
          prioritized: 0,
          failed: 0,
          completed: 0,
        },
      ]);
      const table = (await bufferq(['queues'])).stdout;
      expect(table).toMatch(
        /^queue\s+prefix\s+waiting\s+active\s+delayed\s+prioritized\s+failed\s+completed\s+paused\n/,
      );
      expect(table.split('\n').find((line) => line.startsWith(String(builds.queue)))).toMatch(
        /\s+bull\s+1\s+0\s+0\s+0\s+0\s+0\s+no$/,
      );
    } finally {
      await royalties.obliterate({ force: true });
      await royalties.close();
    }
  });

  it('says which server it cannot reach, and exits 1', async () => {
    const closedPort = await freePort();
    const started = Date.now();
    const run = await bufferq(['stats'], { REDIS_URL: `redis://127.0.0.1:${closedPort}` });
    expect(run.code).toBe(EXIT.failed);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `bufferq: cannot reach Redis 127.0.0.1:${closedPort} (REDIS_URL): connect ECONNREFUSED 127.0.0.1:${closedPort}\n`,
    );
    expect(Date.now() - started).toBeLessThan(15_000);

    const mongoPort = await freePort();
    const noMongo = await bufferq(['queues', '--json'], { MONGO_URL: `mongodb://127.0.0.1:${mongoPort}` });
    expect(noMongo.code).toBe(EXIT.failed);
    expect(JSON.parse(noMongo.stderr).error).toMatch(
      new RegExp(`^cannot reach MongoDB at mongodb://127\\.0\\.0\\.1:${mongoPort}/? \\(MONGO_URL\\): .*ECONNREFUSED`),
    );
  });

  it('runs as `npx bufferq` from the repository', () => {
    const run = spawnSync('npx', ['--no-install', 'bufferq', 'stats', '--json'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(JSON.parse(run.stdout)).toEqual([
      { buffer: 'counters', collection: 'counters', bufferedFields: 0, oldestPendingAgeMs: 0, deadLetters: 0 },
    ]);
  });
});
