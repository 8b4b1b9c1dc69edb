import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTsScript } from '@bufferq/testing';
import type { ChaosResult } from '../tools/chaos/report';

// The whole system under faults for 30 s: its own Redis and MongoDB-wire server, 4 producers and 3 flush
// workers in their own processes, connections cut and replies dropped by a proxy, workers SIGKILLed,
// Redis killed and restarted, MongoDB stopped for 10 s. A fixed seed makes the fault plan repeatable.
const SEED = 20261201;
const DURATION_S = 30;

function runChaos(jsonFile: string): Promise<{ code: number | null; output: string }> {
  return runTsScript('tools/chaos/chaos-run.ts', [
    '--duration',
    String(DURATION_S),
    '--seed',
    String(SEED),
    '--json',
    jsonFile,
  ]);
}

describe('chaos run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bufferq-chaos-spec-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('applies every acknowledged update exactly once while workers, Redis, MongoDB and the network fail', async () => {
    const jsonFile = join(dir, 'result.json');
    const { code, output } = await runChaos(jsonFile);
    if (code === 2) throw new Error(`the chaos run itself failed:\n${output}`);
    console.log(output);
    const result = JSON.parse(readFileSync(jsonFile, 'utf8')) as ChaosResult;

    // The faults happened, and updates went through them.
    expect(result.faults).toMatchObject({ redisRestarts: 1, mongoStops: 1 });
    expect(result.faults.workerKills).toBeGreaterThan(0);
    expect(result.faults.connectionCuts).toBeGreaterThan(0);
    expect(result.faults.droppedReplies).toBeGreaterThan(0);
    expect(result.acknowledged).toBeGreaterThan(1_000);

    // Exactly once: nothing acknowledged missing, nothing applied twice, no value nobody sent,
    // and everything buffered reached MongoDB.
    expect({
      lost: result.lost,
      doubled: result.doubled,
      wrong: result.wrong,
      undrained: result.undrainedFields,
      problems: result.problems,
    }).toEqual({
      lost: 0,
      doubled: 0,
      wrong: 0,
      undrained: {},
      problems: [],
    });
    expect(result.drained).toBe(true);
    expect(code).toBe(0);
  }, 400_000);
});
