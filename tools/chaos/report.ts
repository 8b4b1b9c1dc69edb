/** The outcome of a chaos run: one JSON-able result (for `--json` and the e2e spec) and its printed form. */
import type { Audit, LedgerData } from './ledger';
import type { FaultCounts } from './fault-plan';

export interface DrainOutcome {
  drained: boolean;
  /** Fields still buffered per namespace when the drain gave up. */
  undrained: Record<string, number>;
  ms: number;
}

export interface FlushQueueReport {
  /** Failed flush jobs BullMQ kept, per failure reason. */
  failures: Record<string, number>;
  /** Job counts, global concurrency, jobs still active and job schedulers, after the drain. */
  state: Record<string, unknown>;
}

export interface ChaosResult {
  seed: number;
  durationS: number;
  documents: number;
  updates: LedgerData['counts'];
  acknowledged: number;
  ambiguous: number;
  refused: number;
  inc: Audit['inc'];
  max: Audit['max'];
  set: Audit['set'];
  unexpectedFields: number;
  /** $inc amount plus $max and $set fields: zero exactly when no acknowledged update went missing. */
  lost: number;
  /** $inc amount applied beyond acknowledged + ambiguous. */
  doubled: number;
  /** $max / $set fields holding a value no acknowledged or ambiguous update sent, plus unexpected fields. */
  wrong: number;
  deadLetters: number;
  flushQueue: FlushQueueReport;
  drained: boolean;
  undrainedFields: Record<string, number>;
  drainMs: number;
  faults: FaultCounts;
  problems: string[];
  logDir: string;
  /** Nothing lost, doubled or wrong, and everything buffered reached MongoDB: the exit code is 0. */
  ok: boolean;
}

export function chaosResult(
  run: { seed: number; durationS: number; documents: number; logDir: string },
  ledger: LedgerData,
  audit: Audit,
  drain: DrainOutcome,
  deadLetters: number,
  faults: FaultCounts,
  flushQueue: FlushQueueReport,
): ChaosResult {
  const total = (outcome: 'acked' | 'ambiguous' | 'refused') =>
    ledger.counts.inc[outcome] + ledger.counts.max[outcome] + ledger.counts.set[outcome];
  const lost = audit.inc.lost + audit.max.lost + audit.set.lost;
  const doubled = audit.inc.doubled;
  const wrong = audit.max.wrong + audit.set.wrong + audit.unexpectedFields;
  return {
    seed: run.seed,
    durationS: run.durationS,
    documents: run.documents,
    updates: ledger.counts,
    acknowledged: total('acked'),
    ambiguous: total('ambiguous'),
    refused: total('refused'),
    inc: audit.inc,
    max: audit.max,
    set: audit.set,
    unexpectedFields: audit.unexpectedFields,
    lost,
    doubled,
    wrong,
    deadLetters,
    flushQueue,
    drained: drain.drained,
    undrainedFields: drain.undrained,
    drainMs: drain.ms,
    faults,
    problems: audit.problems,
    logDir: run.logDir,
    ok: lost === 0 && doubled === 0 && wrong === 0 && drain.drained,
  };
}

/** Markdown tables, as the benchmarks print them. */
export function formatReport(result: ChaosResult): string {
  const n = (value: number) => Math.round(value).toLocaleString('en-US');
  const { inc, max, set, updates, faults } = result;
  const lines = [
    '',
    `## Chaos run, seed ${result.seed}, ${result.durationS} s`,
    '',
    '| | $inc | $max | $set |',
    '|---|---:|---:|---:|',
    `| updates acknowledged | ${n(updates.inc.acked)} | ${n(updates.max.acked)} | ${n(updates.set.acked)} |`,
    `| updates ambiguous | ${n(updates.inc.ambiguous)} | ${n(updates.max.ambiguous)} | ${n(updates.set.ambiguous)} |`,
    `| updates refused before sending | ${n(updates.inc.refused)} | ${n(updates.max.refused)} | ${n(updates.set.refused)} |`,
    `| fields checked | ${n(inc.fields)} | ${n(max.fields)} | ${n(set.fields)} |`,
    `| amount acknowledged / ambiguous | ${n(inc.acked)} / ${n(inc.ambiguous)} | | |`,
    `| amount applied | ${n(inc.applied)} | | |`,
    `| lost (amount / fields) | ${n(inc.lost)} | ${n(max.lost)} | ${n(set.lost)} |`,
    `| doubled (amount) / wrong value (fields) | ${n(inc.doubled)} | ${n(max.wrong)} | ${n(set.wrong)} |`,
    `| dead-lettered (amount / fields) | ${n(inc.deadLettered)} | ${n(max.deadLettered)} | ${n(set.deadLettered)} |`,
    '',
    '| fault | count |',
    '|---|---:|',
    `| worker kills (SIGKILL) | ${faults.workerKills} |`,
    `| worker boot failures (restarted) | ${faults.workerBootFailures} |`,
    `| Redis restarts (SIGKILL, AOF fsync always) | ${faults.redisRestarts} |`,
    `| MongoDB stops (10 s) | ${faults.mongoStops} |`,
    `| connection cuts | ${faults.connectionCuts} |`,
    `| dropped replies | ${faults.droppedReplies} |`,
    '',
    `dead letters: ${result.deadLetters}; unexpected fields: ${result.unexpectedFields}; ` +
      (result.drained
        ? `drained in ${(result.drainMs / 1000).toFixed(1)} s`
        : `NOT drained, still buffered: ${JSON.stringify(result.undrainedFields)}`),
    ...failureLines(result.flushQueue.failures),
    ...(result.drained ? [] : ['', `flush queue after the drain: ${JSON.stringify(result.flushQueue.state)}`]),
    ...(result.problems.length ? ['', 'first discrepancies:', ...result.problems.map((line) => `- ${line}`)] : []),
    '',
    result.ok
      ? `OK: exactly once held (${n(result.acknowledged)} acknowledged, ${n(result.ambiguous)} ambiguous updates)`
      : `FAILED: lost ${n(result.lost)}, doubled ${n(result.doubled)}, wrong ${n(result.wrong)}${result.drained ? '' : ', buffer not drained'} (seed ${result.seed}; logs in ${result.logDir})`,
    '',
  ];
  return lines.join('\n');
}

/** Failed flush jobs, most frequent reason first: expected under faults, telling when flushing stopped. */
function failureLines(failures: Record<string, number>): string[] {
  const reasons = Object.entries(failures).sort(([, a], [, b]) => b - a);
  if (reasons.length === 0) return [];
  const total = reasons.reduce((sum, [, count]) => sum + count, 0);
  return ['', `failed flush jobs: ${total}`, ...reasons.slice(0, 5).map(([reason, count]) => `- ${count} x ${reason}`)];
}
