/**
 * The faults of a chaos run that the orchestrator causes itself (the network ones are the fault proxy's
 * chaos mode): drawn up front from the seed, so a run is replayed by passing its seed again.
 */
import { SeededRandom } from './random';

const WORKER_KILL_EVERY_MS: [number, number] = [2_000, 5_000];
const REDIS_DOWN_MS: [number, number] = [500, 2_000];
export const MONGO_DOWN_MS = 10_000;

export interface FaultPlan {
  /** SIGKILL worker `worker` at `atMs` (it is started again at once). */
  workerKills: Array<{ atMs: number; worker: number }>;
  /** SIGKILL Redis at `atMs`, start it again on the same port and AOF `downMs` later. */
  redisRestart: { atMs: number; downMs: number };
  /** Stop the MongoDB-wire server at `atMs`, start it again on the same port and data `downMs` later. */
  mongoStop: { atMs: number; downMs: number };
}

/** What actually happened (a kill planned while its worker was between death and restart is skipped). */
export interface FaultCounts {
  workerKills: number;
  /** Workers that exited on their own, e.g. booting while Redis was down; each is started again. */
  workerBootFailures: number;
  redisRestarts: number;
  mongoStops: number;
  connectionCuts: number;
  droppedReplies: number;
}

export function noFaults(): FaultCounts {
  return {
    workerKills: 0,
    workerBootFailures: 0,
    redisRestarts: 0,
    mongoStops: 0,
    connectionCuts: 0,
    droppedReplies: 0,
  };
}

export function planFaults(random: SeededRandom, durationMs: number, workers: number): FaultPlan {
  const workerKills: FaultPlan['workerKills'] = [];
  for (
    let at = random.between(...WORKER_KILL_EVERY_MS);
    at < durationMs;
    at += random.between(...WORKER_KILL_EVERY_MS)
  ) {
    workerKills.push({ atMs: at, worker: random.int(0, workers - 1) });
  }
  // Redis restarts in the first half and MongoDB stops in the second, so the two outages never overlap
  // and MongoDB is back (on runs of 25 s or more) before the faults end.
  const redisRestart = { atMs: random.between(0.15, 0.35) * durationMs, downMs: random.between(...REDIS_DOWN_MS) };
  const mongoFrom = 0.45 * durationMs;
  const mongoStop = {
    atMs: random.between(mongoFrom, Math.max(mongoFrom, durationMs - MONGO_DOWN_MS - 2_000)),
    downMs: MONGO_DOWN_MS,
  };
  return { workerKills, redisRestart, mongoStop };
}

/** Runs faults at their times; `stop` cancels those not started yet and waits for those running. */
export class FaultTimeline {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly onError: (error: unknown) => void) {}

  at(atMs: number, fault: () => Promise<void>): void {
    this.timers.push(
      setTimeout(() => {
        const run = fault()
          .catch(this.onError)
          .finally(() => this.running.delete(run));
        this.running.add(run);
      }, atMs),
    );
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    await Promise.all([...this.running]);
  }
}
