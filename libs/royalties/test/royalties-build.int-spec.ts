import { mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { Db, MongoClient, ObjectId } from 'mongodb';
import { eventually, testServices, uniqueName, writeSyntheticInputs } from '@bufferq/testing';
import { RunRoyaltiesBuild } from '../src/build/run-royalties-build';
import type { InputPolicy } from '../src/inputs/input-policy';
import { readConsolidatedPage } from '../src/storage/consolidated-entries';
import { RoyaltiesRepository } from '../src/storage/royalties.repository';

const fixtures = join(__dirname, 'fixtures');
const fixture = {
  usersCsv: join(fixtures, 'users.csv'),
  streamsCsv: join(fixtures, 'streams.csv'),
  tracks: join(fixtures, 'tracks.json'),
};
// The inputs here are the test's own files, in the repository and in a temporary directory.
const inputPolicy: InputPolicy = { root: '/', privateHosts: [], maxLineBytes: 64 * 1024 };

describe('RunRoyaltiesBuild with MongoDB', () => {
  let client: MongoClient;
  let db: Db;
  let repository: RoyaltiesRepository;
  let dir: string;

  beforeAll(async () => {
    client = await new MongoClient(testServices().mongoUrl).connect();
    db = client.db(uniqueName('royalties'));
    repository = new RoyaltiesRepository(db);
    dir = await mkdtemp(join(tmpdir(), 'royalties-build-'));
  });
  afterAll(async () => {
    await db.dropDatabase();
    await client.close();
    await rm(dir, { recursive: true, force: true });
  });

  const newBuild = async (inputs = fixture) => {
    const id = new ObjectId().toHexString();
    await repository.createBuild(id, inputs);
    return id;
  };

  it('persists per-user seconds, per-label payouts and totals, and only then marks the build succeeded', async () => {
    const id = await newBuild();
    const progress: string[] = [];
    await expect(
      new RunRoyaltiesBuild(repository, { maxBadLineShare: 0.01, inputPolicy }).execute(
        id,
        async (p) => void progress.push(p.phase),
      ),
    ).resolves.toBe('succeeded');
    const build = await repository.findBuild(id);
    expect(build?.status).toBe('succeeded');
    expect(build?.result?.labels).toEqual([
      { label: 'label A', seconds: 150, payoutCents: 1011 },
      { label: 'label B', seconds: 50, payoutCents: 337 },
      { label: 'label C', seconds: 150, payoutCents: 1010 },
    ]);
    expect(build?.result?.revenue.totalCents).toBe(2358);
    expect(build?.result?.persistedUsers).toBe(4);
    expect(progress).toEqual(expect.arrayContaining(['tracks', 'users', 'streams', 'persisting']));
    expect(await repository.findUser(build!, 'u1')).toEqual({
      userId: 'u1',
      seconds: 200,
      listed: true,
      productType: 'premium',
      feeCents: 1000,
      origin: 'web',
    });
    expect(await repository.findUser(build!, 'ghost')).toEqual({
      userId: 'ghost',
      seconds: 50,
      listed: false,
      productType: null,
      feeCents: null,
      origin: null,
    });
    expect(await repository.findUser(build!, 'nobody')).toBeNull();
    const firstPage = await repository.listUsers(build!, undefined, 3);
    expect(firstPage.rows.map((user) => user.userId)).toEqual(['u1', 'u2', 'u3']);
    expect(firstPage.more).toBe(true);
    const secondPage = await repository.listUsers(build!, 'u3', 3);
    expect(secondPage).toEqual({ rows: [expect.objectContaining({ userId: 'ghost' })], more: false });
    expect((await repository.latestSucceeded())?._id).toBe(id);
  });

  it('pages through every user exactly once across buckets, and finds users and tracks in any bucket', async () => {
    const files = await writeSyntheticInputs(join(dir, 'paging'), {
      users: 1_000,
      streams: 5_000,
      tracks: 600,
      unknownUserShare: 0.02,
    });
    const id = await newBuild(files);
    await new RunRoyaltiesBuild(repository, { maxBadLineShare: 0.01, inputPolicy }).execute(id);
    const build = (await repository.findBuild(id))!;
    expect(build.result?.userBuckets).toBeGreaterThan(3);
    const seen: string[] = [];
    let after: string | undefined;
    for (let more = true; more;) {
      const page = await repository.listUsers(build, after, 170);
      seen.push(...page.rows.map((row) => row.userId));
      more = page.more;
      after = page.rows[page.rows.length - 1]?.userId;
    }
    expect(seen).toHaveLength(build.result!.persistedUsers);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(['u0', 'u999']));
    const found = await repository.findUsers(build, ['u0', 'u500', 'u999', 'nobody']);
    expect([...found.keys()].sort()).toEqual(['u0', 'u500', 'u999']);
    const tracks = await repository.findTracks(build, ['t0', 't599', 'x-unknown']);
    expect(Object.fromEntries(tracks)).toEqual({
      t0: { trackName: 'Song 0', label: 'label 1' },
      t599: { trackName: 'Song 599', label: 'label 6' },
    });
  });

  it('pages consolidated entries from the streams file by cursor, joined with users and tracks', async () => {
    const id = await newBuild();
    await new RunRoyaltiesBuild(repository, { maxBadLineShare: 0.01, inputPolicy }).execute(id);
    const build = (await repository.findBuild(id))!;
    const first = await readConsolidatedPage(repository, build, undefined, 4, inputPolicy);
    expect(first.items[0]).toEqual({
      date: '2019-03-01',
      user_id: 'u1',
      product_type: 'premium',
      fee: 10,
      origin: 'web',
      region: 'NL',
      track_id: 't1',
      track_name: 'First Song',
      track_label: 'label A',
      seconds: 100,
    });
    expect(first.items[1]).toMatchObject({ region: 'NL', user_id: 'u2', fee: 7.99, origin: 'app_store' });
    const second = await readConsolidatedPage(repository, build, first.next!, 4, inputPolicy);
    expect(second.next).toBeNull();
    expect(second.items).toEqual([
      {
        date: '2019-03-03',
        user_id: 'ghost',
        product_type: null,
        fee: null,
        origin: null,
        region: 'NL',
        track_id: 't1',
        track_name: 'First Song',
        track_label: 'label A',
        seconds: 50,
      },
      {
        date: '2019-03-04',
        user_id: 'u2',
        product_type: 'platinum',
        fee: 7.99,
        origin: 'app_store',
        region: 'NL',
        track_id: 't9',
        track_name: null,
        track_label: null,
        seconds: 70,
      },
    ]);
    await expect(readConsolidatedPage(repository, build, 'not-a-cursor', 4, inputPolicy)).rejects.toThrow(RangeError);
  });

  it('refuses consolidated pages once the streams file changed after the build', async () => {
    const streamsCsv = join(dir, 'changing.csv');
    await writeFile(streamsCsv, 'date;user_id;region;track id;seconds\n01/03/2019;u1;NL;t1;100\n');
    const id = await newBuild({ ...fixture, streamsCsv });
    await new RunRoyaltiesBuild(repository, { maxBadLineShare: 0.01, inputPolicy }).execute(id);
    await appendFile(streamsCsv, '01/03/2019;u1;NL;t1;100\n');
    await expect(
      readConsolidatedPage(repository, (await repository.findBuild(id))!, undefined, 10, inputPolicy),
    ).rejects.toThrow(/changed since build/);
  });

  it('fails the build for good, with the message, when too many lines are malformed', async () => {
    const streamsCsv = join(dir, 'bad.csv');
    await writeFile(streamsCsv, 'date;user_id;region;track id;seconds\n01/03/2019;u1;NL;t1;oops\n');
    const id = await newBuild({ ...fixture, streamsCsv });
    const run = new RunRoyaltiesBuild(repository, { maxBadLineShare: 0.01, inputPolicy }).execute(id);
    await expect(run).rejects.toThrow(UnrecoverableError);
    await expect(run).rejects.toThrow(/1 of 1 streams CSV lines \(100.00%\) are malformed/);
    expect(await repository.findBuild(id)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/First: line 2: seconds is not a non-negative integer\.$/),
    });
    expect(await repository.users.countDocuments({ _id: { $gt: `${id}/`, $lt: `${id}0` } })).toBe(0);
  });

  it("refuses, for good, a stored input the worker's policy does not allow (defaults, documents not written by the api)", async () => {
    const id = await newBuild();
    const rooted = new RunRoyaltiesBuild(repository, {
      maxBadLineShare: 0.01,
      inputPolicy: { ...inputPolicy, root: dir },
    });
    const run = rooted.execute(id);
    await expect(run).rejects.toThrow(UnrecoverableError);
    await expect(run).rejects.toThrow(`track metadata: ${fixture.tracks} is outside ROYALTIES_INPUT_ROOT`);
    expect(await repository.findBuild(id)).toMatchObject({
      status: 'failed',
      error: `track metadata: ${fixture.tracks} is outside ROYALTIES_INPUT_ROOT`,
    });
  });

  it('stops a running build when cancellation is requested and keeps none of its results', async () => {
    const files = await writeSyntheticInputs(join(dir, 'big'), { users: 20_000, streams: 1_000_000 });
    const id = await newBuild(files);
    const run = new RunRoyaltiesBuild(repository, { maxBadLineShare: 0.01, checkIntervalMs: 20, inputPolicy }).execute(
      id,
    );
    expect(await eventually(async () => (await repository.findBuild(id))?.progress?.phase === 'streams', 20_000)).toBe(
      true,
    );
    const progress = (await repository.findBuild(id))?.progress;
    expect(await repository.requestCancel(id)).toBe(true);
    await expect(run).resolves.toBe('cancelled');
    const build = await repository.findBuild(id);
    expect(build?.status).toBe('cancelled');
    expect(progress?.percent).toBeLessThan(100);
    expect(await repository.users.countDocuments({ _id: { $gt: `${id}/`, $lt: `${id}0` } })).toBe(0);
    expect(await repository.requestCancel(id)).toBe(false);
  });

  it('puts a build back in the queue state on an unexpected error with retries left, and fails it on the last attempt', async () => {
    // Fault injection on the real database: the first save fails as a dropped connection would.
    class FlakyRepository extends RoyaltiesRepository {
      failures = 1;
      override async saveConsolidation(...args: Parameters<RoyaltiesRepository['saveConsolidation']>): Promise<void> {
        if (this.failures-- > 0) throw new Error('connection reset');
        return super.saveConsolidation(...args);
      }
    }
    const flaky = new FlakyRepository(db);
    const id = await newBuild();
    const run = new RunRoyaltiesBuild(flaky, { maxBadLineShare: 0.01, inputPolicy });
    await expect(run.execute(id, undefined, true)).rejects.toThrow('connection reset');
    expect(await repository.findBuild(id)).toMatchObject({
      status: 'queued',
      error: 'attempt failed, retrying: connection reset',
    });
    await expect(run.execute(id, undefined, true)).resolves.toBe('succeeded');

    const last = await newBuild();
    flaky.failures = 1;
    await expect(run.execute(last, undefined, false)).rejects.toThrow('connection reset');
    expect(await repository.findBuild(last)).toMatchObject({ status: 'failed', error: 'connection reset' });
  });

  it("reruns a build that a crashed worker left half-persisted, and keeps only the latest build's rows", async () => {
    const older = await newBuild();
    await new RunRoyaltiesBuild(repository, { maxBadLineShare: 0.01, inputPolicy }).execute(older);
    const id = await newBuild();
    await repository.markRunning(id);
    // The bucket the rerun writes first: without clearing, its insert would fail on the duplicate _id.
    await repository.users.insertOne({
      _id: `${id}/0`,
      entries: 1,
      columns: JSON.stringify({
        ids: ['leftover'],
        seconds: [1],
        listed: [false],
        productType: [null],
        feeCents: [null],
        origin: [null],
      }),
    });
    await expect(new RunRoyaltiesBuild(repository, { maxBadLineShare: 0.01, inputPolicy }).execute(id)).resolves.toBe(
      'succeeded',
    );
    const build = (await repository.findBuild(id))!;
    expect(await repository.findUser(build, 'leftover')).toBeNull();
    expect(await repository.findUser(build, 'u1')).not.toBeNull();
    expect(await repository.findUser((await repository.findBuild(older))!, 'u1')).toBeNull();
    await expect(new RunRoyaltiesBuild(repository, { maxBadLineShare: 0.01, inputPolicy }).execute(id)).resolves.toBe(
      'already finished',
    );
  });
});
