/**
 * Accounting of a chaos run, pure (no Redis, no MongoDB): what producers saw happen to their updates,
 * and the audit of what MongoDB holds at the end against it.
 *
 * Each update ends in one of three outcomes as its producer saw it:
 * - `acked`: the promise resolved, so the update must be in MongoDB exactly once;
 * - `refused`: it failed before anything was sent to Redis, so it must not be in MongoDB;
 * - `ambiguous`: any other failure (a cut connection, a dropped reply, never settled): it may or may not
 *   have been applied, but at most once.
 */
import { BufferUnavailableError, InvalidUpdateError } from '@bufferq/buffered-increments';

export type Outcome = 'acked' | 'ambiguous' | 'refused';
export type Operator = 'inc' | 'max' | 'set';

/** `<collection>|<document id>|<field path>`: what the audit compares, whatever namespace wrote it. */
export type FieldKey = string;

export interface IncrementTally {
  acked: number;
  ambiguous: number;
  refused: number;
}

export interface ValueTally {
  acked: number[];
  ambiguous: number[];
  refused: number[];
}

export interface LedgerData {
  /** Sums of `$inc` deltas per field and outcome. */
  increments: Record<FieldKey, IncrementTally>;
  /** `$max` values per field and outcome. */
  maxima: Record<FieldKey, ValueTally>;
  /**
   * `$set` fields, each owned by one producer that sets it to 0, 1, 2, ... one update at a time: the
   * outcome of the update that wrote value `i` is at index `i`.
   */
  sets: Record<FieldKey, Outcome[]>;
  /** Updates per operator and outcome. */
  counts: Record<Operator, Record<Outcome, number>>;
}

export function fieldKey(collection: string, documentId: string, fieldPath: string): FieldKey {
  return `${collection}|${documentId}|${fieldPath}`;
}

function parseFieldKey(key: FieldKey): { collection: string; documentId: string; fieldPath: string } {
  const [collection, documentId, fieldPath] = key.split('|');
  return { collection, documentId, fieldPath };
}

/**
 * The one rule that splits failures. Only a failure raised before the update left the process may be
 * called "not applied": bad input, or the buffer saw Redis disconnected and sent nothing. Every other
 * failure happened after the command may have reached Redis.
 */
export function outcomeOfFailure(error: unknown): Exclude<Outcome, 'acked'> {
  if (error instanceof InvalidUpdateError) return 'refused';
  if (error instanceof BufferUnavailableError && /Redis is not connected/.test(error.message)) return 'refused';
  return 'ambiguous';
}

function emptyCounts(): LedgerData['counts'] {
  const outcomes = () => ({ acked: 0, ambiguous: 0, refused: 0 });
  return { inc: outcomes(), max: outcomes(), set: outcomes() };
}

/** What one producer records, one update at a time, as its promises settle. */
export class ProducerLedger {
  private readonly data: LedgerData = { increments: {}, maxima: {}, sets: {}, counts: emptyCounts() };

  recordIncrement(key: FieldKey, delta: number, outcome: Outcome): void {
    const tally = (this.data.increments[key] ??= { acked: 0, ambiguous: 0, refused: 0 });
    tally[outcome] += delta;
    this.data.counts.inc[outcome] += 1;
  }

  recordMax(key: FieldKey, value: number, outcome: Outcome): void {
    const tally = (this.data.maxima[key] ??= { acked: [], ambiguous: [], refused: [] });
    tally[outcome].push(value);
    this.data.counts.max[outcome] += 1;
  }

  /** `value` is the owner's sequence number for the field; the owner sets 0, 1, 2, ... in order. */
  recordSet(key: FieldKey, value: number, outcome: Outcome): void {
    const outcomes = (this.data.sets[key] ??= []);
    if (value !== outcomes.length)
      throw new Error(`set ${key}: value ${value} recorded out of order (expected ${outcomes.length})`);
    outcomes.push(outcome);
    this.data.counts.set[outcome] += 1;
  }

  toJSON(): LedgerData {
    return this.data;
  }
}

/** All producers' ledgers as one: sums and value lists per field; `$set` fields have one owner each. */
export function mergeLedgers(ledgers: LedgerData[]): LedgerData {
  const merged: LedgerData = { increments: {}, maxima: {}, sets: {}, counts: emptyCounts() };
  for (const ledger of ledgers) {
    for (const [key, tally] of Object.entries(ledger.increments)) {
      const into = (merged.increments[key] ??= { acked: 0, ambiguous: 0, refused: 0 });
      into.acked += tally.acked;
      into.ambiguous += tally.ambiguous;
      into.refused += tally.refused;
    }
    for (const [key, tally] of Object.entries(ledger.maxima)) {
      const into = (merged.maxima[key] ??= { acked: [], ambiguous: [], refused: [] });
      into.acked.push(...tally.acked);
      into.ambiguous.push(...tally.ambiguous);
      into.refused.push(...tally.refused);
    }
    for (const [key, outcomes] of Object.entries(ledger.sets)) {
      if (merged.sets[key]) throw new Error(`set field ${key} has two owners`);
      merged.sets[key] = outcomes;
    }
    for (const operator of ['inc', 'max', 'set'] as const) {
      for (const outcome of ['acked', 'ambiguous', 'refused'] as const)
        merged.counts[operator][outcome] += ledger.counts[operator][outcome];
    }
  }
  return merged;
}

export interface StoredDocument {
  _id: unknown;
  [field: string]: unknown;
}

export interface Audit {
  /** `$inc`, in units of delta: what producers saw and what MongoDB holds. */
  inc: {
    fields: number;
    acked: number;
    ambiguous: number;
    refused: number;
    applied: number;
    lost: number;
    doubled: number;
    deadLettered: number;
  };
  /** `$max`, in fields: lost = below the largest acknowledged value; wrong = a value no acked or ambiguous update wrote. */
  max: { fields: number; lost: number; wrong: number; deadLettered: number };
  /** `$set`, in fields: lost = not the last acknowledged value nor a later ambiguous one; wrong = a value never sent or refused. */
  set: { fields: number; lost: number; wrong: number; deadLettered: number };
  /** Fields in MongoDB no producer ever wrote (beyond `_`-prefixed bookkeeping such as the marker). */
  unexpectedFields: number;
  /** The first discrepancies of each kind, one line each, for the report. */
  problems: string[];
}

/** Discrepancies listed per kind: enough to see a pattern, and one kind never hides another. */
const PROBLEMS_PER_KIND = 5;

/**
 * Compares what MongoDB holds with the ledger. `deadLettered` names documents (`<collection>|<id>`) that
 * have a dead letter: what is missing from those is reported as dead-lettered, not lost (it was set
 * aside on purpose and can be replayed), while anything applied twice still counts as doubled.
 */
export function auditLedger(
  ledger: LedgerData,
  documents: Map<string, StoredDocument[]>,
  deadLettered: Set<string> = new Set(),
): Audit {
  const stored = new Map<FieldKey, unknown>();
  for (const [collection, list] of documents) {
    for (const document of list) {
      for (const [path, value] of leaves(document)) stored.set(fieldKey(collection, String(document._id), path), value);
    }
  }
  const audit: Audit = {
    inc: { fields: 0, acked: 0, ambiguous: 0, refused: 0, applied: 0, lost: 0, doubled: 0, deadLettered: 0 },
    max: { fields: 0, lost: 0, wrong: 0, deadLettered: 0 },
    set: { fields: 0, lost: 0, wrong: 0, deadLettered: 0 },
    unexpectedFields: 0,
    problems: [],
  };
  const listed = new Map<string, number>();
  const problem = (kind: string, line: string) => {
    const count = listed.get(kind) ?? 0;
    listed.set(kind, count + 1);
    if (count < PROBLEMS_PER_KIND) audit.problems.push(line);
  };
  const isDeadLettered = (key: FieldKey) => {
    const { collection, documentId } = parseFieldKey(key);
    return deadLettered.has(`${collection}|${documentId}`);
  };
  const seen = new Set<FieldKey>();

  for (const [key, tally] of Object.entries(ledger.increments)) {
    seen.add(key);
    const value = stored.get(key);
    const applied = value === undefined ? 0 : Number(value);
    audit.inc.fields += 1;
    audit.inc.acked += tally.acked;
    audit.inc.ambiguous += tally.ambiguous;
    audit.inc.refused += tally.refused;
    audit.inc.applied += applied;
    const missing = Math.max(0, tally.acked - applied);
    const doubled = Math.max(0, applied - tally.acked - tally.ambiguous);
    if (missing > 0 && isDeadLettered(key)) audit.inc.deadLettered += missing;
    else if (missing > 0) {
      audit.inc.lost += missing;
      problem(
        'inc lost',
        `$inc ${key}: ${applied} applied, ${tally.acked} acknowledged (+${tally.ambiguous} ambiguous): ${missing} lost`,
      );
    }
    if (doubled > 0) {
      audit.inc.doubled += doubled;
      problem(
        'inc doubled',
        `$inc ${key}: ${applied} applied, ${tally.acked} acknowledged + ${tally.ambiguous} ambiguous: ${doubled} applied twice`,
      );
    }
  }

  for (const [key, tally] of Object.entries(ledger.maxima)) {
    seen.add(key);
    const value = stored.get(key);
    audit.max.fields += 1;
    const floor = tally.acked.length ? Math.max(...tally.acked) : undefined;
    if (floor !== undefined && (value === undefined || Number(value) < floor)) {
      if (isDeadLettered(key)) audit.max.deadLettered += 1;
      else {
        audit.max.lost += 1;
        problem('max lost', `$max ${key}: holds ${String(value)}, below the acknowledged ${floor}`);
      }
    } else if (
      value !== undefined &&
      !tally.acked.includes(Number(value)) &&
      !tally.ambiguous.includes(Number(value))
    ) {
      audit.max.wrong += 1;
      problem(
        'max wrong',
        `$max ${key}: holds ${String(value)}, which no acknowledged or ambiguous update sent${tally.refused.includes(Number(value)) ? ' (a refused one did)' : ''}`,
      );
    }
  }

  for (const [key, outcomes] of Object.entries(ledger.sets)) {
    seen.add(key);
    const value = stored.get(key);
    audit.set.fields += 1;
    const lastAcked = outcomes.lastIndexOf('acked');
    const allowed = (seq: number) => seq === lastAcked || (seq > lastAcked && outcomes[seq] === 'ambiguous');
    if (value === undefined) {
      if (lastAcked < 0) continue;
      if (isDeadLettered(key)) audit.set.deadLettered += 1;
      else {
        audit.set.lost += 1;
        problem('set lost', `$set ${key}: missing, the last acknowledged value is ${lastAcked}`);
      }
      continue;
    }
    const seq = Number(value);
    if (Number.isInteger(seq) && allowed(seq)) continue;
    if (Number.isInteger(seq) && seq >= 0 && seq < lastAcked && outcomes[seq] !== 'refused') {
      // An earlier write is what stayed: the last acknowledged one was lost (or overtaken by a re-sent older one).
      if (isDeadLettered(key)) audit.set.deadLettered += 1;
      else {
        audit.set.lost += 1;
        problem(
          'set lost',
          `$set ${key}: holds ${seq} (${outcomes[seq]}), the last acknowledged value is ${lastAcked}`,
        );
      }
      continue;
    }
    audit.set.wrong += 1;
    problem(
      'set wrong',
      `$set ${key}: holds ${String(value)} (${outcomes[seq] ?? 'never sent'}), the last acknowledged value is ${lastAcked}`,
    );
  }

  for (const [key, value] of stored) {
    if (seen.has(key)) continue;
    audit.unexpectedFields += 1;
    problem('unexpected', `unexpected field ${key} = ${String(value)}: no producer wrote it`);
  }
  return audit;
}

/** Leaf paths of a document (dotted), without `_id` and `_`-prefixed bookkeeping fields. */
function* leaves(document: Record<string, unknown>, prefix = ''): Generator<[string, unknown]> {
  for (const [name, value] of Object.entries(document)) {
    if (name.startsWith('_')) continue;
    const path = prefix ? `${prefix}.${name}` : name;
    if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype)
      yield* leaves(value as Record<string, unknown>, path);
    else yield [path, value];
  }
}
