import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildCancelledError } from '../src/consolidation/build-cancelled-error';
import { consolidateRoyalties } from '../src/consolidation/consolidate-royalties';
import { lineAlignedRanges, tallyRange } from '../src/consolidation/streams-ranges';
import { SharedUserIndex } from '../src/consolidation/shared-user-index';
import { RangeUsers, StreamTallyResult, TallyContext } from '../src/consolidation/stream-tally';
import type { InputPolicy } from '../src/inputs/input-policy';

const fixtures = join(__dirname, 'fixtures');
const context: TallyContext = {
  trackIds: ['t1', 't2', 't3'],
  trackLabels: Int32Array.from([0, 1, 1]),
  labelCount: 2,
  maxReportedProblems: 100,
  maxLineBytes: 64 * 1024,
};
// The test's own files, in the repository and a temporary directory.
const inputPolicy: InputPolicy = { root: '/', privateHosts: [], maxLineBytes: 64 * 1024 };
const header = 'date;user_id;region;track id;seconds';

describe('streams file in byte ranges of whole lines', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'royalties-ranges-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  const file = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  /** Every quirk: BOM, CRLF and LF mixed, blank lines (LF and CRLF), malformed lines, no final newline. */
  const quirky = [
    `\ufeff${header}\r\n`,
    '01/03/2019;u1;NL;t1;100\r\n',
    '02/03/2019;u2;nl;t2;50\n',
    '\n',
    '02/03/2019;u3;De;t9;70\r\n',
    '03/03/2019;u1;NL;t3;x\n',
    '\r\n',
    '03/03/2019;ghost;NL;t1;50\n',
    '31/02/2019;u2;NL;t1;5\r\n',
    '04/03/2019;u2;NL;t2;20',
  ].join('');
  const badLines = [6, 9];

  async function rangesTallied(path: string, count: number): Promise<StreamTallyResult[]> {
    const size = readFileSync(path).length;
    const ranges = await lineAlignedRanges(path, size, count);
    return Promise.all(
      ranges.map((range, i) => tallyRange({ path, range, skipLines: i === 0 ? 1 : 0, context }, () => undefined)),
    );
  }

  it('cuts only just after a newline, so no line and no CRLF is split, and the ranges cover the file exactly', async () => {
    const path = await file('quirky.csv', quirky);
    const bytes = readFileSync(path);
    for (let count = 1; count <= bytes.length + 2; count++) {
      const ranges = await lineAlignedRanges(path, bytes.length, count);
      expect(ranges[0].start).toBe(0);
      expect(ranges[ranges.length - 1].end).toBe(bytes.length);
      ranges.forEach((range, i) => {
        expect(range.end).toBeGreaterThan(range.start);
        if (i > 0) {
          expect(range.start).toBe(ranges[i - 1].end);
          expect(bytes[range.start - 1]).toBe(0x0a);
        }
      });
      expect(ranges.length).toBeLessThanOrEqual(count);
    }
  });

  it('moves a cut that falls in the middle of a line, or between CR and LF, to the start of the next line', async () => {
    // 'a;b\r\n' is 5 bytes: an even split of 10 bytes in 2 lands on byte 5, the start of line 2; of 9
    // bytes (second line without newline) on byte 4, the LF of a CRLF: the cut moves to byte 5.
    const path = await file('two.csv', 'a;b\r\nc;d\r\n');
    expect(await lineAlignedRanges(path, 10, 2)).toEqual([
      { start: 0, end: 5 },
      { start: 5, end: 10 },
    ]);
    const odd = await file('odd.csv', 'a;b\r\nc;d');
    expect(await lineAlignedRanges(odd, 8, 2)).toEqual([
      { start: 0, end: 5 },
      { start: 5, end: 8 },
    ]);
    const long = await file('long.csv', `${'x'.repeat(200_000)}\nshort\n`);
    expect(await lineAlignedRanges(long, 200_007, 2)).toEqual([
      { start: 0, end: 200_001 },
      { start: 200_001, end: 200_007 },
    ]);
    const oneLine = await file('one.csv', 'no newline at all');
    expect(await lineAlignedRanges(oneLine, 17, 4)).toEqual([{ start: 0, end: 17 }]);
  });

  it('tallies the same lines, seconds and exact line numbers of malformed lines however the file is cut', async () => {
    const path = await file('quirky-tally.csv', quirky);
    for (let count = 1; count <= 12; count++) {
      const tallies = await rangesTallied(path, count);
      let offset = 0;
      const problemLines: number[] = [];
      for (const tally of tallies) {
        problemLines.push(...tally.problems.map((problem) => offset + problem.line));
        offset += tally.physicalLines;
      }
      const sum = (key: 'lines' | 'valid' | 'bad' | 'blank' | 'seconds') =>
        tallies.reduce((total, tally) => total + tally[key], 0);
      expect(offset).toBe(10);
      expect(problemLines).toEqual(badLines);
      expect({
        lines: sum('lines'),
        valid: sum('valid'),
        bad: sum('bad'),
        blank: sum('blank'),
        seconds: sum('seconds'),
      }).toEqual({ lines: 7, valid: 5, bad: 2, blank: 2, seconds: 290 });
    }
  });

  it("sums the users file's users of a range by their shared-index position, and names only the users missing from it", async () => {
    const path = await file(
      'listed.csv',
      [
        header,
        '01/03/2019;u2;NL;t1;10',
        '01/03/2019;ghost2;NL;t1;1',
        '01/03/2019;u1;NL;t2;20',
        '01/03/2019;ghost1;NL;t9;2',
        '01/03/2019;u2;NL;t1;30',
        '01/03/2019;ghost2;NL;t1;4',
      ].join('\n'),
    );
    const users = new RangeUsers(SharedUserIndex.build(['u1', 'u2', 'u3']));
    const range = { start: 0, end: readFileSync(path).length };
    const tally = await tallyRange({ path, range, skipLines: 1, context }, () => undefined, users);
    expect(tally.listedUsers).toBe(3);
    expect(tally.unlistedIds).toEqual(['ghost2', 'ghost1']);
    expect([...tally.userSeconds]).toEqual([20, 40, 0, 5, 2]);
    expect([...tally.userStreams]).toEqual([1, 2, 0, 2, 1]);
  });

  it('gives the same consolidation in worker threads as in one pass, with malformed lines of later ranges at their exact lines', async () => {
    const lines = [header];
    for (let i = 0; i < 3_000; i++)
      lines.push(`${1 + (i % 28)}/03/2019;u${i % 7};${i % 2 ? 'NL' : 'nl'};t${1 + (i % 9)};${i % 600}`);
    // Malformed lines far into the file, so they fall in later ranges.
    lines[2_100] = '01/03/2019;u1;NL;t1;-5';
    lines[2_900] = '01/13/2019;u1;NL;t1;5';
    lines[1_500] = '';
    const text = lines
      .map((line, i) => `${line}${i % 3 ? '\r\n' : '\n'}`)
      .join('')
      .replace(/\r?\n$/, '');
    const inputs = {
      usersCsv: join(fixtures, 'users.csv'),
      streamsCsv: await file('many.csv', text),
      tracks: join(fixtures, 'tracks.json'),
    };
    const onePass = await consolidateRoyalties(inputs, { maxBadLineShare: 1, inputPolicy });
    const threaded = await consolidateRoyalties(inputs, {
      maxBadLineShare: 1,
      inputPolicy,
      streamThreads: 3,
      minBytesPerThread: 1_000,
    });
    expect(threaded.counts).toEqual(onePass.counts);
    expect(threaded.labels).toEqual(onePass.labels);
    expect(threaded.revenue).toEqual(onePass.revenue);
    expect([...threaded.ledger.entries()]).toEqual([...onePass.ledger.entries()]);
    expect(threaded.problems).toEqual(onePass.problems);
    expect(threaded.problems.map((problem) => problem.line)).toEqual([2_101, 2_901]);
    expect(threaded.counts.streams).toMatchObject({ lines: 2_999, valid: 2_997, bad: 2, blank: 1 });
  });

  it('reports progress while the threads read, and stops them when the build is cancelled', async () => {
    const lines = [header];
    for (let i = 0; i < 200_000; i++) lines.push(`01/03/2019;u${i % 1000};NL;t${1 + (i % 3)};${i % 600}`);
    const inputs = {
      usersCsv: join(fixtures, 'users.csv'),
      streamsCsv: await file('big.csv', lines.join('\n')),
      tracks: join(fixtures, 'tracks.json'),
    };
    const progress: Array<{ phase: string; rowsRead: number; percent: number | null }> = [];
    const threaded = { streamThreads: 2, minBytesPerThread: 100_000, checkIntervalMs: 20, inputPolicy };
    const cancelled = consolidateRoyalties(inputs, {
      maxBadLineShare: 0,
      ...threaded,
      onProgress: (p) => void progress.push(p),
      isCancelled: () => progress.some((p) => p.phase === 'streams' && p.rowsRead > 0),
    });
    await expect(cancelled).rejects.toThrow(BuildCancelledError);

    const complete: Array<{ rowsRead: number; percent: number | null }> = [];
    const result = await consolidateRoyalties(inputs, {
      maxBadLineShare: 0,
      ...threaded,
      onProgress: (p) => void (p.phase === 'streams' && complete.push(p)),
    });
    expect(complete[complete.length - 1].percent).toBe(100);
    expect(result.counts.streams.lines).toBe(200_000);
  });
});
