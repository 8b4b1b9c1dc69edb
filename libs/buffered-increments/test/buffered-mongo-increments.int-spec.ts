import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Collection, Document, Long, MongoClient, ObjectId } from 'mongodb';
import {
  BufferedMongoIncrements,
  BufferUnavailableError,
  FlushReport,
  InvalidUpdateError,
} from '@bufferq/buffered-increments';
import {
  eventually,
  LocalServer,
  redisServersUnderTest,
  sleep,
  startPrivateMongo,
  startPrivateRedis,
  uniqueName,
} from '@bufferq/testing';
import { bufferTestContext } from './fixtures/buffer-test-context';

const docOf = (collection: Collection<Document>, id: unknown) =>
  collection.findOne({ _id: id as never }, { projection: { _bmiMarkers: 0 } });

describe.each(redisServersUnderTest())('on $name', ({ name, url }) => {
  const context = bufferTestContext('bmi', url);
  const { redisUrl, mongoUrl, dbName, freshCollection, buffered } = context;

  async function isFerretDb(): Promise<boolean> {
    const info = await context.mongo.db('admin').command({ buildInfo: 1 });
    return 'ferretdbVersion' in info || 'ferretdb' in info;
  }

  describe('BufferedMongoIncrements', () => {
    it('leaves MongoDB untouched between ticks and holds the exact totals after each tick', async () => {
      const collection = freshCollection();
      const interval = 1_000;
      const buffer = buffered(collection, interval);
      const start = Date.now();
      const expected = { runs: 0 };
      const runs = async () => (await docOf(collection, 'user-1'))?.numberOfRuns ?? 0;
      for (let period = 1; period <= 3; period++) {
        // Land mid-period, increment, check nothing is written yet; the period's tick writes it before the
        // next period's increments. The room for that (half a period) is for the run's first suite on a busy
        // machine: a fresh-clone run missed 140 ms there twice, while the tick-to-visible bench's p99 is 9 ms.
        await sleep(Math.max(0, start + (period - 1) * interval + interval * 0.5 - Date.now()));
        await Promise.all(Array.from({ length: 25 }, () => buffer.increment('user-1', 'numberOfRuns', 2)));
        expected.runs += 50;
        expect(await runs()).toBe(expected.runs - 50);
        await sleep(start + period * interval - Date.now());
        const nextIncrementsAt = start + period * interval + interval * 0.5;
        await eventually(async () => (await runs()) === expected.runs, nextIncrementsAt - 20 - Date.now(), 10);
        expect(await docOf(collection, 'user-1')).toEqual({ _id: 'user-1', numberOfRuns: expected.runs });
      }
    });

    it('writes several counters of one document in one update, creating nested parents and the document', async () => {
      const collection = freshCollection();
      const buffer = buffered(collection);
      await buffer.increment('u', 'numberOfRuns', 1);
      await buffer.increment('u', 'numberOfItemsScraped', 250);
      await buffer.increment('u', 'stats.totalCU', 3);
      await buffer.increment('u', 'stats.deep.er', -4);
      const report = await buffer.flush();
      expect(report).toMatchObject({ batches: 1, documents: 1, fields: 4 });
      expect(await docOf(collection, 'u')).toEqual({
        _id: 'u',
        numberOfRuns: 1,
        numberOfItemsScraped: 250,
        stats: { totalCU: 3, deep: { er: -4 } },
      });
    });

    it('uses _id values as given: strings stay strings, numbers and ObjectIds work', async () => {
      const collection = freshCollection();
      const buffer = buffered(collection);
      const objectId = new ObjectId();
      await buffer.increment('5', 'n', 1);
      await buffer.increment(5, 'n', 10);
      await buffer.increment(objectId, 'n', 100);
      await buffer.flush();
      expect(await docOf(collection, '5')).toEqual({ _id: '5', n: 1 });
      expect(await docOf(collection, 5)).toEqual({ _id: 5, n: 10 });
      expect(await docOf(collection, objectId)).toEqual({ _id: objectId, n: 100 });
    });

    it('round-trips ids and field names holding colons, quotes, spaces and non-ASCII characters', async () => {
      const collection = freshCollection();
      const buffer = buffered(collection);
      // FerretDB 1.24 (SQLite) cannot store a '"' in a field name ("malformed JSON"); MongoDB can.
      const quote = (await isFerretDb()) ? "'" : '"';
      const id = 'user:"42" ünïcødé 🎵 12:3';
      const field = `plays on ${quote}día${quote} 1:2`;
      await buffer.increment(id, field, 7);
      await buffer.increment(id, field, 1);
      await buffer.increment('user:', `${quote}42${quote} ünïcødé`, 3);
      await buffer.flush();
      expect(await docOf(collection, id)).toEqual({ _id: id, [field]: 8 });
      expect(await docOf(collection, 'user:')).toEqual({ _id: 'user:', [`${quote}42${quote} ünïcødé`]: 3 });
    });

    it('only updates existing documents when upsert is off', async () => {
      const collection = freshCollection();
      await collection.insertOne({ _id: 'exists' as never, n: 1 });
      const buffer = buffered(collection, 60_000, { upsert: false });
      await buffer.increment('exists', 'n', 1);
      await buffer.increment('missing', 'n', 1);
      await buffer.flush();
      expect(await docOf(collection, 'exists')).toEqual({ _id: 'exists', n: 2 });
      expect(await docOf(collection, 'missing')).toBeNull();
    });

    it('buffers $max, $min and $set beside $inc and writes them in the same flush', async () => {
      const collection = freshCollection();
      await collection.insertOne({
        _id: 'u' as never,
        best: 10,
        worst: 10,
        lastItemScrapedAt: new Date('2026-01-01T00:00:00Z'),
      });
      const buffer = buffered(collection);
      await buffer.max('u', 'best', 12);
      await buffer.max('u', 'best', 30);
      await buffer.max('u', 'best', 20);
      await buffer.min('u', 'worst', 3);
      await buffer.min('u', 'worst', 5);
      await buffer.max('u', 'lastItemScrapedAt', new Date('2026-03-01T00:00:00Z'));
      await buffer.max('u', 'lastItemScrapedAt', new Date('2026-02-01T00:00:00Z'));
      await buffer.set('u', 'plan', 'free');
      await buffer.set('u', 'plan', { name: 'pro', seats: 3 });
      await buffer.increment('u', 'runs', 1);
      await buffer.flush();
      expect(await docOf(collection, 'u')).toEqual({
        _id: 'u',
        best: 30,
        worst: 3,
        lastItemScrapedAt: new Date('2026-03-01T00:00:00Z'),
        plan: { name: 'pro', seats: 3 },
        runs: 1,
      });
      // $max keeps the stored value when the buffered one is smaller.
      await buffer.max('u', 'best', 1);
      await buffer.flush();
      expect((await docOf(collection, 'u'))?.best).toBe(30);
    });

    it('orders a $set and an $inc of the same field as they were called', async () => {
      const collection = freshCollection();
      await collection.insertOne({ _id: 'a' as never, n: 100 });
      await collection.insertOne({ _id: 'b' as never, n: 100 });
      const buffer = buffered(collection);
      await buffer.set('a', 'n', 0); // reset, then count on
      await buffer.increment('a', 'n', 5);
      await buffer.increment('b', 'n', 5); // counted, then reset
      await buffer.set('b', 'n', 0);
      await buffer.flush();
      expect(await docOf(collection, 'a')).toEqual({ _id: 'a', n: 5 });
      expect(await docOf(collection, 'b')).toEqual({ _id: 'b', n: 0 });
    });

    it('keeps integers exact to signed 64 bits (Int64 past 2^53) and non-integer deltas as doubles', async () => {
      const collection = freshCollection();
      const buffer = buffered(collection);
      await buffer.increment('u', 'big', BigInt(Number.MAX_SAFE_INTEGER));
      await buffer.increment('u', 'big', 10n);
      await buffer.increment('u', 'small', -7);
      await buffer.increment('u', 'cu', 0.5);
      await buffer.increment('u', 'cu', 0.25);
      await buffer.increment('u', 'cu', 2);
      await buffer.flush();
      const raw = await collection.findOne({ _id: 'u' as never }, { useBigInt64: true });
      expect(raw?.big).toBe(BigInt(Number.MAX_SAFE_INTEGER) + 10n);
      expect(raw?.small).toBe(-7);
      expect(raw?.cu).toBe(2.75);
      await buffer.increment('u', 'edge', 2n ** 63n - 1n);
      await expect(buffer.increment('u', 'edge', 1)).rejects.toThrow(/overflow a signed 64-bit/);
      await buffer.flush();
      const stored = await collection.findOne({ _id: 'u' as never }, { promoteLongs: false });
      expect(stored?.big).toEqual(Long.fromBigInt(BigInt(Number.MAX_SAFE_INTEGER) + 10n));
      expect(stored?.edge).toEqual(Long.fromBigInt(2n ** 63n - 1n));
    });

    it('keeps a counter an exact integer across flushes once its sum passes 32 bits (found by npm run fuzz)', async () => {
      const collection = freshCollection();
      const buffer = buffered(collection);
      await buffer.increment('p', 'n', Number.MAX_SAFE_INTEGER);
      await buffer.flush();
      await buffer.increment('p', 'n', 2);
      await buffer.flush();
      const raw = await collection.findOne({ _id: 'p' as never }, { useBigInt64: true });
      expect(raw?.n).toBe(BigInt(Number.MAX_SAFE_INTEGER) + 2n);
    });

    it('sends increments that arrive during a flush to the next flush and loses none', async () => {
      const collection = freshCollection();
      const buffer = buffered(collection);
      let sent = 0;
      let producing = true;
      const producers = Array.from({ length: 8 }, async (_, p) => {
        while (producing) {
          await buffer.increment(`doc-${p % 3}`, 'n', 1);
          sent += 1;
        }
      });
      const reports: FlushReport[] = [];
      for (let i = 0; i < 10; i++) {
        reports.push(await buffer.flush());
        await sleep(20);
      }
      producing = false;
      await Promise.all(producers);
      await buffer.flush();
      const docs = await collection.find().toArray();
      expect(docs.reduce((sum, doc) => sum + doc.n, 0)).toBe(sent);
      expect(reports.filter((report) => report.batches > 0).length).toBeGreaterThan(3);
    });

    it('sends the updates of one event-loop turn in one script call, also when separate callbacks make them', async () => {
      const collection = freshCollection();
      const buffer = buffered(collection);
      await buffer.increment('warm-up', 'n', 1); // loads the script, so no NOSCRIPT retry is counted below
      const liveKey = `bmi:{${buffer.namespace}}:live`;
      const calls: string[][] = [];
      const monitor = await context.redis.monitor(); // a connection of its own
      // The buffering script is the one call whose first key is the live hash and that names a caller.
      monitor.on('monitor', (_time: string, args: string[]) => {
        if (args[0].toLowerCase().startsWith('eval') && args[2] === '4' && args[3] === liveKey) calls.push(args);
      });
      // 50 callbacks of one turn, as a server runs one per request it read from a socket in that turn.
      const accepted = await new Promise<Array<Promise<void>>>((resolve) => {
        const made: Array<Promise<void>> = [];
        for (let i = 0; i < 50; i++) {
          setImmediate(() => {
            made.push(buffer.increment(`doc-${i % 5}`, 'n', 1));
            if (made.length === 50) resolve(made);
          });
        }
      });
      // Asked for before those updates reached Redis: the flush still includes them.
      const report = await buffer.flush();
      await Promise.all(accepted);
      monitor.disconnect();
      expect(calls).toHaveLength(1);
      expect(report.fields).toBe(6);
      const docs = await collection
        .find({ _id: { $ne: 'warm-up' as never } })
        .sort({ _id: 1 })
        .toArray();
      expect(docs.map((doc) => doc.n)).toEqual([10, 10, 10, 10, 10]);
    });

    it('applies every increment exactly once with 20 instances ticking concurrently on one document', async () => {
      const collection = freshCollection();
      const namespace = uniqueName('shared');
      const interval = 250;
      const fleet: BufferedMongoIncrements[] = [];
      for (let i = 0; i < 20; i++) {
        fleet.push(buffered(collection, interval, { namespace }));
        await sleep(interval / 20); // staggered timers
      }
      let issued = 0;
      let maxSeen = 0;
      const deadline = Date.now() + 2_000;
      const writers = fleet.map(async (instance) => {
        while (Date.now() < deadline) {
          await instance.increment('hot', 'count', 1);
          issued += 1;
          await sleep(2);
        }
      });
      const watcher = (async () => {
        while (Date.now() < deadline) {
          const seen = (await docOf(collection, 'hot'))?.count ?? 0;
          // Never more than was issued (a doubled batch would overshoot).
          expect(seen).toBeLessThanOrEqual(issued);
          maxSeen = Math.max(maxSeen, seen);
          await sleep(50);
        }
      })();
      await Promise.all([...writers, watcher]);
      expect(maxSeen).toBeGreaterThan(0);
      await sleep(interval * 2);
      expect(await docOf(collection, 'hot')).toEqual({ _id: 'hot', count: issued });
      await Promise.all(fleet.map((instance) => instance.flush()));
      expect(await docOf(collection, 'hot')).toEqual({ _id: 'hot', count: issued });
    });

    it('flushes early when the buffer passes maxBufferedFields instead of growing', async () => {
      const collection = freshCollection();
      const buffer = buffered(collection, 600_000, { maxBufferedFields: 50 });
      for (let i = 0; i < 120; i++) await buffer.increment(`d${i}`, 'n', 1);
      // The interval is ten minutes: only early flushes can have written these.
      expect(await eventually(async () => (await buffer.stats()).bufferedFields === 0, 5_000)).toBe(true);
      expect(await collection.countDocuments()).toBe(120);
    });

    it('drains a batch larger than one read in HSCAN steps, exactly', async () => {
      const collection = freshCollection();
      const buffer = buffered(collection, 60_000, { readChunkSize: 16, writeChunkSize: 100 });
      await Promise.all(Array.from({ length: 600 }, (_, i) => buffer.increment(`d${i % 200}`, `f${i % 3}`, i)));
      const report = await buffer.flush();
      expect(report).toMatchObject({ fields: 600, documents: 200 });
      const docs = await collection.find({}, { projection: { _bmiMarkers: 0 } }).toArray();
      const total = docs.reduce((sum, doc) => sum + (doc.f0 ?? 0) + (doc.f1 ?? 0) + (doc.f2 ?? 0), 0);
      expect(total).toBe((599 * 600) / 2);
    });

    it('reports oldest pending age and buffered fields', async () => {
      const buffer = buffered(freshCollection());
      expect(await buffer.stats()).toEqual({ bufferedFields: 0, oldestPendingAgeMs: 0 });
      await buffer.increment('a', 'x', 1);
      await buffer.increment('a', 'y', 1);
      await sleep(60);
      const stats = await buffer.stats();
      expect(stats.bufferedFields).toBe(2);
      expect(stats.oldestPendingAgeMs).toBeGreaterThanOrEqual(50);
    });

    it('destroy() stops the timer and leaves the buffer in Redis; close() flushes it', async () => {
      const collection = freshCollection();
      const namespace = uniqueName('ns');
      const first = buffered(collection, 100, { namespace });
      await first.increment('a', 'n', 5);
      first.destroy();
      await sleep(250);
      expect(await docOf(collection, 'a')).toBeNull();
      await expect(first.increment('a', 'n', 1)).rejects.toBeInstanceOf(BufferUnavailableError);
      const second = buffered(collection, 60_000, { namespace });
      await second.close();
      expect(await docOf(collection, 'a')).toEqual({ _id: 'a', n: 5 });
    });

    it('sets aside an update MongoDB refuses (dead letter) and applies the rest of the batch', async () => {
      const collection = freshCollection();
      await collection.insertOne({ _id: 'text' as never, n: 'not a number' });
      const buffer = buffered(collection);
      const letters: unknown[] = [];
      buffer.on('deadLetter', (letter) => letters.push(letter));
      await buffer.increment('text', 'n', 1);
      await buffer.increment('fine', 'n', 1);
      const report = await buffer.flush();
      expect(report.deadLetters).toBe(1);
      expect(letters).toEqual([expect.objectContaining({ documentId: 'text', fields: { 'is4:textn': '1' } })]);
      expect(await docOf(collection, 'fine')).toEqual({ _id: 'fine', n: 1 });
      expect((await buffer.stats()).bufferedFields).toBe(0);
    });

    describe('rejects bad input with a clear error and buffers nothing', () => {
      const cases: Array<[string, (b: BufferedMongoIncrements) => Promise<void>, RegExp]> = [
        ['NaN delta', (b) => b.increment('a', 'n', NaN), /finite number/],
        ['Infinity delta', (b) => b.increment('a', 'n', Infinity), /finite number/],
        ['string delta', (b) => b.increment('a', 'n', '5' as never), /finite number/],
        ['unsafe integer delta', (b) => b.increment('a', 'n', 2 ** 60), /unsafe integer/],
        ['bigint past 64 bits', (b) => b.increment('a', 'n', 2n ** 64n), /64-bit/],
        ['empty id', (b) => b.increment('', 'n', 1), /documentId must not be empty/],
        ['object id value', (b) => b.increment({} as never, 'n', 1), /documentId must be/],
        ['NaN id', (b) => b.increment(NaN, 'n', 1), /finite number/],
        ['oversized id', (b) => b.increment('x'.repeat(513), 'n', 1), /at most 512 bytes/],
        ['empty path', (b) => b.increment('a', '', 1), /non-empty string/],
        ['$ path', (b) => b.increment('a', '$inc', 1), /starting with '\$'/],
        ['$ segment', (b) => b.increment('a', 'a.$b', 1), /starting with '\$'/],
        ['empty segment', (b) => b.increment('a', 'a..b', 1), /empty segment/],
        ['leading dot', (b) => b.increment('a', '.a', 1), /empty segment/],
        ['trailing dot', (b) => b.increment('a', 'a.', 1), /empty segment/],
        ['__proto__', (b) => b.increment('a', 'x.__proto__', 1), /reserved name '__proto__'/],
        ['constructor', (b) => b.increment('a', 'constructor', 1), /reserved name 'constructor'/],
        ['prototype', (b) => b.increment('a', 'prototype.x', 1), /reserved name 'prototype'/],
        ['_id path', (b) => b.increment('a', '_id', 1), /must not update _id/],
        ['marker path', (b) => b.increment('a', '_bmi', 1), /idempotency marker/],
        ['oversized path', (b) => b.increment('a', 'p'.repeat(513), 1), /at most 512 bytes/],
        ['max with a string', (b) => b.max('a', 'n', '3' as never), /finite number or a valid Date/],
        ['min with an invalid Date', (b) => b.min('a', 'n', new Date('nope')), /valid Date/],
        ['set undefined', (b) => b.set('a', 'n', undefined), /BSON-serialisable/],
      ];
      it.each(cases)('%s', async (_name, act, message) => {
        const buffer = buffered(freshCollection());
        const attempt = act(buffer);
        await expect(attempt).rejects.toBeInstanceOf(InvalidUpdateError);
        await expect(attempt).rejects.toThrow(message);
        expect((await buffer.stats()).bufferedFields).toBe(0);
      });

      it('mixing Date and number in one pending max', async () => {
        const buffer = buffered(freshCollection());
        await buffer.max('a', 'at', new Date());
        await expect(buffer.max('a', 'at', 5)).rejects.toThrow(/another type/);
        expect((await buffer.stats()).bufferedFields).toBe(1);
      });
    });
  });

  describe('BufferedMongoIncrements crash safety', () => {
    const fixture = join(__dirname, 'fixtures', 'crashing-flusher.ts');

    function runCrashingFlusher(
      collection: Collection<Document>,
      namespace: string,
      phase: string,
    ): Promise<number | null> {
      const child = spawn(
        process.execPath,
        [
          '-r',
          'ts-node/register/transpile-only',
          '-r',
          'tsconfig-paths/register',
          fixture,
          redisUrl,
          mongoUrl,
          dbName,
          collection.collectionName,
          namespace,
          phase,
        ],
        {
          stdio: ['ignore', 'inherit', 'inherit'],
          env: { ...process.env, TS_NODE_PROJECT: join(__dirname, '..', '..', '..', 'tsconfig.json') },
        },
      );
      return new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal === 'SIGKILL' ? null : code)));
    }

    it.each([
      ['before its MongoDB write', 'before-write'],
      ['after its MongoDB write, before acknowledging', 'after-write'],
      ['in the middle of its MongoDB writes', 'after-first-chunk'],
    ])('applies every increment exactly once when the flusher is killed %s', async (_when, phase) => {
      const collection = freshCollection();
      const namespace = uniqueName('crash');
      const producer = buffered(collection, 60_000, { namespace, autoFlush: false });
      for (let i = 0; i < 40; i++) await producer.increment(`d${i % 20}`, 'n', i + 1);
      expect(await runCrashingFlusher(collection, namespace, phase)).toBeNull(); // died by SIGKILL
      // New increments arrive after the crash; they must wait for the recovered batch, not merge into it.
      await producer.increment('d0', 'n', 1000);
      const rescuer = buffered(collection, 60_000, { namespace, autoFlush: false });
      const report = await rescuer.flush(); // waits out the dead flusher's 1 s lease
      expect(report.recoveredBatches).toBe(1);
      expect(report.batches).toBe(2);
      const docs = await collection.find().toArray();
      expect(docs.reduce((sum, doc) => sum + doc.n, 0)).toBe((40 * 41) / 2 + 1000);
      expect(docs.find((doc) => String(doc._id) === 'd0')?.n).toBe(1 + 21 + 1000);
    });

    it('applies a batch twice when the marker is off and the flusher dies after writing (at-least-once, documented)', async () => {
      const collection = freshCollection();
      const namespace = uniqueName('crash');
      // The child flusher uses the default marker; we disable it on both sides by writing through one that has none.
      const producer = buffered(collection, 60_000, { namespace, autoFlush: false, idempotencyMarker: false });
      await producer.increment('d', 'n', 1);
      expect(await runCrashingFlusher(collection, namespace, 'after-write')).toBeNull();
      await collection.updateOne({ _id: 'd' as never }, { $unset: { _bmiMarkers: '' } }); // as if it had no marker
      const rescuer = buffered(collection, 60_000, { namespace, autoFlush: false, idempotencyMarker: false });
      await rescuer.flush();
      expect((await docOf(collection, 'd'))?.n).toBe(2);
    });
  });

  describe('BufferedMongoIncrements when Redis goes down', () => {
    let privateRedis: LocalServer;

    afterEach(async () => {
      await privateRedis?.remove();
    });

    it('rejects increment() with BufferUnavailableError while Redis is down, and works again after', async () => {
      privateRedis = await startPrivateRedis({ server: name });
      const client = new Redis(privateRedis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
      const collection = freshCollection();
      const buffer = buffered(collection, 60_000, {}, client);
      await buffer.increment('a', 'n', 1);
      await privateRedis.kill();
      await eventually(() => client.status !== 'ready', 5_000);
      await expect(buffer.increment('a', 'n', 1)).rejects.toBeInstanceOf(BufferUnavailableError);
      await privateRedis.start();
      await eventually(() => client.status === 'ready', 10_000);
      // The server kept nothing on disk: only the increment made after the restart exists.
      await buffer.increment('a', 'n', 10);
      await buffer.flush();
      expect(await docOf(collection, 'a')).toEqual({ _id: 'a', n: 10 });
      client.disconnect();
    });
  });
});

// A MongoDB outage is the same whichever Redis-protocol server buffers: it runs once, on Redis.
describe('BufferedMongoIncrements when MongoDB goes down', () => {
  const { buffered } = bufferTestContext('bmi_outage');
  let privateMongo: LocalServer;

  afterEach(async () => {
    await privateMongo?.remove();
  });

  it('keeps accepting increments while MongoDB is down, retries with backoff, and loses nothing', async () => {
    privateMongo = await startPrivateMongo();
    const client = await new MongoClient(privateMongo.url, { serverSelectionTimeoutMS: 500 }).connect();
    const collection = client.db('outage').collection('counters');
    const buffer = buffered(collection, 200, { retryDelayMs: 50 });
    const failures: unknown[] = [];
    buffer.on('flushError', (error) => failures.push(error));
    let issued = 0;
    const produce = async (ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        await buffer.increment(`k${issued % 5}`, 'n', 1);
        issued += 1;
        await sleep(2);
      }
    };
    await produce(500);
    await privateMongo.stop();
    await produce(1_500); // accepted while MongoDB is down
    expect(failures.length).toBeGreaterThan(0);
    await privateMongo.start();
    await produce(300);
    expect(
      await eventually(async () => {
        const docs = await collection
          .find()
          .toArray()
          .catch(() => []);
        return docs.reduce((sum, doc) => sum + doc.n, 0) === issued;
      }, 15_000),
    ).toBe(true);
    await client.close();
  });
});
