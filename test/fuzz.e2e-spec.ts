import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTsScript } from '@bufferq/testing';
import type { FuzzResult } from '../tools/fuzz/report';

// The api and the worker as processes, 1,000 generated requests against every route (`npm run fuzz` runs
// 10,000): every JSON type and size, odd Unicode, NUL bytes, huge and negative numbers, deep nesting,
// wrong content types, bad headers, long URLs, malformed HTTP and random paths. A fixed seed makes the
// requests repeatable.
const SEED = 20261201;
const REQUESTS = 1_000;

function runFuzz(jsonFile: string): Promise<{ code: number | null; output: string }> {
  return runTsScript('tools/fuzz/fuzz-run.ts', [
    '--requests',
    String(REQUESTS),
    '--seed',
    String(SEED),
    '--json',
    jsonFile,
  ]);
}

describe('fuzzing the api and the worker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bufferq-fuzz-spec-'));
  let result: FuzzResult;
  let output: string;

  beforeAll(async () => {
    const jsonFile = join(dir, 'result.json');
    const run = await runFuzz(jsonFile);
    output = run.output;
    if (run.code === 2) throw new Error(`the fuzz run itself failed:\n${output}`);
    console.log(output);
    result = JSON.parse(readFileSync(jsonFile, 'utf8')) as FuzzResult;
  }, 400_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('sends every request and reaches every route', () => {
    expect(Object.values(result.byClass).reduce((sum, count) => sum + count, 0)).toBe(REQUESTS);
    expect(result.byRoute['POST /api/v1/increment']['2xx']).toBeGreaterThan(0);
    expect(result.byClass['4xx']).toBeGreaterThan(0);
  });

  it('answers no request with a 5xx and leaves no well-formed request unanswered', () => {
    expect(
      result.findings.map(({ kind, label, status, message, count, example }) => ({
        kind,
        label,
        status,
        message,
        count,
        request: example.request,
        log: example.log,
      })),
    ).toEqual([]);
  });

  it('keeps the api and the worker alive and the api live', () => {
    expect(result.processes).toMatchObject({
      api: expect.stringMatching(/^alive/),
      worker: expect.stringMatching(/^alive/),
      health: 200,
    });
  });

  it('keeps the api memory stable after the warm-up (measured after full garbage collections)', () => {
    expect(result.memory.api).toBeDefined();
    expect(result.memory.api!.growth).toBeLessThan(result.memory.boundBytes);
  });

  // A counter whose sum in MongoDB would pass Int64 is refused there and kept as a dead letter: the
  // audit counts dead-lettered amounts as accounted (not lost), so they need no exception here.
  it('applies every increment the api accepted exactly once and none it refused', () => {
    const increments = result.increments;
    expect(increments.drained).toBe(true);
    expect(increments.acceptedIncrements).toBeGreaterThan(0);
    expect({
      mismatches: increments.mismatches,
      outsideAmbiguousRange: increments.ambiguousMismatches,
      phantoms: increments.phantoms,
      readBack: increments.readbackMismatches,
      wrongAnswers: increments.wrongAnswers,
    }).toEqual({
      mismatches: [],
      outsideAmbiguousRange: [],
      phantoms: [],
      readBack: [],
      wrongAnswers: [],
    });
  });

  it('settles every timer that fell due and every royalties build it accepted', () => {
    expect(result.timers.stuck).toEqual([]);
    expect(result.builds.stuck).toEqual([]);
  });

  it('passes as a whole', () => {
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
  });
});
