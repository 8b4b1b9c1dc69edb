import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSyntheticInputs } from '@bufferq/testing';
import { BuildCancelledError } from '../src/consolidation/build-cancelled-error';
import { consolidateRoyalties } from '../src/consolidation/consolidate-royalties';
import { BuildInputError, InputUnavailableError } from '../src/inputs/input-errors';
import type { InputPolicy } from '../src/inputs/input-policy';
import { readTrackMetadata } from '../src/inputs/track-metadata';

const fixtures = join(__dirname, 'fixtures');
const fixture = {
  usersCsv: join(fixtures, 'users.csv'),
  streamsCsv: join(fixtures, 'streams.csv'),
  tracks: join(fixtures, 'tracks.json'),
};
// The inputs here are the test's own files (in the repository and a temporary directory) and its own
// loopback HTTP server.
const inputPolicy: InputPolicy = { root: '/', privateHosts: ['127.0.0.1'], maxLineBytes: 64 * 1024 };
const lenient = { maxBadLineShare: 1, inputPolicy };

describe('consolidateRoyalties', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'royalties-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  const file = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  it('computes the hand-made fixture: revenue 23.584 -> 23.58, payouts 10.11 / 3.37 / 10.10 by largest remainder', async () => {
    // Revenue: u1 10,00 web x 0.9 = 9.00; u2 7,99 app_store x 0.7 = 5.593; u3 9,99 web x 0.9 = 8.991.
    // Label seconds: A = 100 (u1) + 50 (ghost) = 150, B = 50, C = 50 + 100 = 150; t9 (70 s) is unknown.
    // 2358 cents x 150/350 = 1010 r 200, x 50/350 = 336 r 300: the two leftover cents go to B, then A (tie with C).
    const result = await consolidateRoyalties(fixture, lenient);
    expect(result.revenue.totalExact).toBe('23.5840');
    expect(result.revenue.totalCents).toBe(2358);
    expect(result.revenue.byOrigin).toEqual({
      app_store: { users: 1, feesCents: 799, revenueExact: '5.5930' },
      web: { users: 2, feesCents: 1999, revenueExact: '17.9910' },
    });
    expect(result.labels).toEqual([
      { label: 'label A', seconds: 150, payoutCents: 1011 },
      { label: 'label B', seconds: 50, payoutCents: 337 },
      { label: 'label C', seconds: 150, payoutCents: 1010 },
    ]);
    expect(result.labels.reduce((sum, label) => sum + label.payoutCents, 0)).toBe(result.revenue.totalCents);
    expect(result.unallocatedCents).toBe(0);
    expect(Object.fromEntries([...result.ledger.entries()].map((user) => [user.userId, user.seconds]))).toEqual({
      u1: 200,
      u2: 120,
      u3: 50,
      ghost: 50,
    });
    expect(result.counts.streams).toMatchObject({
      lines: 6,
      valid: 6,
      bad: 0,
      seconds: 420,
      unknownTrackStreams: 1,
      unknownTrackSeconds: 70,
      unknownTrackSample: ['t9'],
      unknownUserStreams: 1,
      unknownUsers: 1,
      unknownUserSample: ['ghost'],
    });
    expect(result.counts.users).toEqual({ lines: 3, listed: 3, bad: 0 });
    expect(result.problemCount).toBe(0);
  });

  it('recovers the first track of a mangled metadata file from its keys and gets the same payouts', async () => {
    const metadata = await readTrackMetadata(join(fixtures, 'tracks-mangled.json'), inputPolicy);
    expect(metadata.recoveredFromKeys).toBe(true);
    expect(metadata.tracks).toEqual([
      { trackId: 't1', trackName: 'First Song', label: 'label A' },
      { trackId: 't2', trackName: 'Second Song', label: 'label B' },
      { trackId: 't3', trackName: 'Third Song', label: 'label C' },
    ]);
    const result = await consolidateRoyalties({ ...fixture, tracks: join(fixtures, 'tracks-mangled.json') }, lenient);
    expect(result.labels.map((label) => label.payoutCents)).toEqual([1011, 337, 1010]);
    expect(result.counts.tracks).toEqual({ count: 3, bad: 0, recoveredFromKeys: true });
  });

  it('reads mangled values in document order even when the keys look like integers (JSON.parse would reorder them)', async () => {
    const path = await file('numeric.json', '[{"300":"301","20":"21","label 9":"label 8"}]');
    const metadata = await readTrackMetadata(path, inputPolicy);
    expect(metadata.tracks).toEqual([
      { trackId: '300', trackName: '20', label: 'label 9' },
      { trackId: '301', trackName: '21', label: 'label 8' },
    ]);
  });

  it('reports malformed lines with line numbers and keeps going when under the allowed share', async () => {
    const usersCsv = await file(
      'users-bad.csv',
      'user_id;product_type;fee;origin\nu1;premium;7.99;web\nu2;premium;7,99;play_store\nu3;premium;7,99\nu4;premium;7,99;web\r\nu4;premium;1,00;web\n\nu5;premium;5,00;app_store',
    );
    const streamsCsv = await file(
      'streams-bad.csv',
      'date;user_id;region;track id;seconds\r\n31/02/2019;u4;NL;t1;10\n01/03/2019;u4;NL;t1;-5\n01/03/2019;u4;NL;t1;abc\n01/03/2019;;NL;t1;3\n01/03/2019;u4;NL;t1\n\n1/3/2019;u4;nl;t1;7\n01/03/2019;u5;NL;t2;3\n',
    );
    const result = await consolidateRoyalties({ usersCsv, streamsCsv, tracks: fixture.tracks }, lenient);
    expect(result.problems).toEqual([
      { source: 'users', line: 2, reason: 'fee is not an amount with a decimal comma like 7,99' },
      { source: 'users', line: 3, reason: 'origin is neither app_store nor web' },
      { source: 'users', line: 4, reason: "expected 4 fields separated by ';', found 3" },
      { source: 'users', line: 6, reason: 'user_id is listed on an earlier line too (the first listing counts)' },
      { source: 'streams', line: 2, reason: 'date is not a day/month/year date' },
      { source: 'streams', line: 3, reason: 'seconds is not a non-negative integer' },
      { source: 'streams', line: 4, reason: 'seconds is not a non-negative integer' },
      { source: 'streams', line: 5, reason: 'user_id is empty' },
      { source: 'streams', line: 6, reason: "expected 5 fields separated by ';', found 4" },
    ]);
    expect(result.counts.users).toEqual({ lines: 6, listed: 2, bad: 4 });
    expect(result.counts.streams).toMatchObject({ lines: 7, valid: 2, bad: 5, blank: 1 });
    expect(result.labels.find((label) => label.label === 'label A')?.seconds).toBe(7);
    // Only u4 (7,99 web, its first listing) and u5 (5,00 app_store) count: 7.191 + 3.50 = 10.691.
    expect(result.revenue.totalExact).toBe('10.6910');
    expect(result.revenue.totalCents).toBe(1069);
  });

  it('fails with a clear message naming the share and the first bad line when too many lines are malformed', async () => {
    const streamsCsv = await file(
      'streams-mostly-bad.csv',
      'date;user_id;region;track id;seconds\n01/03/2019;u1;NL;t1;x\n01/03/2019;u1;NL;t1;5\n',
    );
    await expect(
      consolidateRoyalties({ ...fixture, streamsCsv }, { maxBadLineShare: 0.1, inputPolicy }),
    ).rejects.toThrow(
      new BuildInputError(
        '1 of 2 streams CSV lines (50.00%) are malformed, more than the allowed 10.00% (ROYALTIES_MAX_BAD_LINE_SHARE). First: line 2: seconds is not a non-negative integer.',
      ),
    );
  });

  it('rejects a file whose first line is not the expected header', async () => {
    const streamsCsv = await file('streams-no-header.csv', '01/03/2019;u1;NL;t1;5\n');
    await expect(consolidateRoyalties({ ...fixture, streamsCsv }, lenient)).rejects.toThrow(
      new BuildInputError(
        'streams CSV: the first line must be the header `date;user_id;region;track id;seconds` (found other names)',
      ),
    );
  });

  it('names the input it cannot open, and rejects metadata that is not a JSON array', async () => {
    await expect(consolidateRoyalties({ ...fixture, usersCsv: join(dir, 'missing.csv') }, lenient)).rejects.toThrow(
      InputUnavailableError,
    );
    await expect(consolidateRoyalties({ ...fixture, usersCsv: join(dir, 'missing.csv') }, lenient)).rejects.toThrow(
      /users CSV: cannot read .*missing\.csv: ENOENT$/,
    );
    const notArray = await file('object.json', '{"track_id":"t1"}');
    await expect(readTrackMetadata(notArray, inputPolicy)).rejects.toThrow(
      'track metadata: expected a JSON array of track objects',
    );
    const broken = await file('broken.json', '[{"track_id": "t1",');
    await expect(readTrackMetadata(broken, inputPolicy)).rejects.toThrow(/track metadata: not valid JSON/);
  });

  it('reports progress with rows and bytes, and stops between chunks when cancelled', async () => {
    const files = await writeSyntheticInputs(join(dir, 'synthetic'), { users: 1_000, streams: 60_000 });
    const progress: Array<{ phase: string; rowsRead: number; percent: number | null }> = [];
    const cancelled = consolidateRoyalties(files, {
      maxBadLineShare: 0.01,
      inputPolicy,
      checkIntervalMs: 0,
      onProgress: (p) => void progress.push(p),
      isCancelled: () => progress.filter((p) => p.phase === 'streams').length >= 3,
    });
    await expect(cancelled).rejects.toThrow(BuildCancelledError);
    const streaming = progress.filter((p) => p.phase === 'streams');
    expect(streaming.length).toBeGreaterThan(1);
    expect(streaming[streaming.length - 1].rowsRead).toBeGreaterThan(streaming[0].rowsRead);
    expect(streaming[streaming.length - 1].percent).toBeLessThan(100);

    const complete: number[] = [];
    const result = await consolidateRoyalties(files, {
      maxBadLineShare: 0.01,
      inputPolicy,
      onProgress: (p) => void (p.phase === 'streams' && complete.push(p.percent ?? -1)),
    });
    expect(complete[complete.length - 1]).toBe(100);
    expect(result.counts.streams.lines).toBe(60_000);
    expect(result.labels.reduce((sum, label) => sum + label.payoutCents, 0) + result.unallocatedCents).toBe(
      result.revenue.totalCents,
    );
  });

  it('generates synthetic inputs with every format quirk, which the consolidation reads back in full', async () => {
    const files = await writeSyntheticInputs(join(dir, 'quirks'), {
      users: 300,
      streams: 3_000,
      tracks: 50,
      labels: 5,
      mangledTracks: true,
      unknownTrackShare: 0.05,
      unknownUserShare: 0.05,
    });
    const users = await readFile(files.usersCsv, 'utf8');
    const streams = await readFile(files.streamsCsv, 'utf8');
    expect(users).toMatch(/\r\n/);
    expect(users).toMatch(/[^\r]\n/);
    expect(users).toMatch(/;\d+,\d\d;/);
    expect(users.endsWith('\n')).toBe(false);
    expect(streams.endsWith('\n')).toBe(false);
    expect(streams).toMatch(/^\d\d\/\d\d\/2019;/m);
    expect(streams).toMatch(/;nl;/);
    expect(streams).toMatch(/;NL;/);
    const result = await consolidateRoyalties(files, { maxBadLineShare: 0, inputPolicy });
    expect(result.counts.tracks).toEqual({ count: 50, bad: 0, recoveredFromKeys: true });
    expect(result.counts.users).toEqual({ lines: 300, listed: 300, bad: 0 });
    expect(result.counts.streams).toMatchObject({ lines: 3_000, valid: 3_000, bad: 0 });
    expect(result.counts.streams.unknownTrackStreams).toBeGreaterThan(0);
    expect(result.counts.streams.unknownUserStreams).toBeGreaterThan(0);
    expect(result.labels).toHaveLength(5);
  });

  describe('from http(s) URLs', () => {
    let server: Server;
    let base: string;
    beforeAll(async () => {
      server = createServer((request, response) => {
        const name = (request.url ?? '').slice(1);
        const path = join(fixtures, name);
        stat(path).then(
          (info) => {
            response.writeHead(200, { 'content-length': info.size });
            createReadStream(path).pipe(response);
          },
          () => response.writeHead(404).end(),
        );
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise((resolve) => server.close(resolve)));

    it('reads all three inputs from a local HTTP server, the mangled metadata included', async () => {
      const result = await consolidateRoyalties(
        { usersCsv: `${base}/users.csv`, streamsCsv: `${base}/streams.csv`, tracks: `${base}/tracks-mangled.json` },
        lenient,
      );
      expect(result.labels.map((label) => label.payoutCents)).toEqual([1011, 337, 1010]);
      expect(result.streamsInput.sizeBytes).toBe((await stat(fixture.streamsCsv)).size);
    });

    it('fails clearly when the server answers 404', async () => {
      await expect(readTrackMetadata(`${base}/nope.json`, inputPolicy)).rejects.toThrow(
        `track metadata: GET ${base}/nope.json answered 404`,
      );
    });
  });
});
