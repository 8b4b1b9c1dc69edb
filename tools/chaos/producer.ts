/**
 * A producer process of a chaos run (forked by chaos-run.ts, config as JSON in argv[2]). It buffers a
 * seeded stream of `$inc` / `$max` / `$set` updates through the plain `BufferedMongoIncrements` class,
 * one instance per namespace, on a Redis connection that runs through the fault proxy, and records how
 * each update ended. On `stop` it stops issuing, waits for what is in flight, and sends its ledger.
 */
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { BufferedMongoIncrements } from '@bufferq/buffered-increments';
import { fieldKey, Outcome, outcomeOfFailure, ProducerLedger } from './ledger';
import { SeededRandom } from './random';
import {
  BUFFERS,
  ChildMessage,
  documentIdOf,
  flushIntervalOf,
  INCREMENT_FIELDS,
  MAX_FIELD,
  ParentMessage,
  ProducerConfig,
  setFieldOf,
} from './topology';

const TICK_MS = 10;
/** Share of updates per operator; the rest are `$inc`. */
const MAX_SHARE = 0.1;
const SET_SHARE = 0.1;
/** How long `stop` waits for in-flight updates; those still unsettled then are ambiguous. */
const SETTLE_TIMEOUT_MS = 15_000;

const config = JSON.parse(process.argv[2]) as ProducerConfig;
const send = (message: ChildMessage, then: () => void = () => undefined) => process.send!(message, then);

interface Pending {
  settled: boolean;
  record(outcome: Outcome): void;
}

async function main(): Promise<void> {
  // The client options the README recommends for producers: fail fast while Redis is away.
  const redis = new Redis(config.redisUrl, { enableAutoPipelining: true, enableOfflineQueue: false });
  redis.on('error', () => undefined); // cuts are the point of the run; each update records its own outcome
  await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
  // Producers only buffer; this client is never asked to connect.
  const db = new MongoClient(config.mongoUrl).db(config.dbName);
  const buffers = BUFFERS.map((target) => ({
    target,
    buffer: new BufferedMongoIncrements(db.collection(target.collection), redis, flushIntervalOf(target.namespace), {
      namespace: target.namespace,
      autoFlush: false,
    }),
  }));

  const random = new SeededRandom(config.seed);
  const ledger = new ProducerLedger();
  const pending = new Set<Pending>();
  // Sets to one field go one at a time, so the value that must win is well defined.
  const nextSetValue = new Map<string, number>();
  const setsInFlight = new Set<string>();

  const track = (update: Promise<void>, record: (outcome: Outcome) => void, onSettled?: () => void) => {
    const entry: Pending = { settled: false, record };
    pending.add(entry);
    const settle = (outcome: Outcome) => {
      if (entry.settled) return;
      entry.settled = true;
      pending.delete(entry);
      record(outcome);
      onSettled?.();
    };
    update.then(
      () => settle('acked'),
      (error: unknown) => settle(outcomeOfFailure(error)),
    );
    return entry;
  };

  const issue = () => {
    const { target, buffer } = random.pick(buffers);
    const documentId = documentIdOf(random.int(0, config.documents - 1));
    const roll = random.next();
    if (roll < MAX_SHARE) {
      const value = random.int(1, 1_000_000_000);
      const key = fieldKey(target.collection, documentId, MAX_FIELD);
      track(buffer.max(documentId, MAX_FIELD, value), (outcome) => ledger.recordMax(key, value, outcome));
      return;
    }
    const setField = setFieldOf(config.index, target);
    const setKey = fieldKey(target.collection, documentId, setField);
    if (roll < MAX_SHARE + SET_SHARE && !setsInFlight.has(setKey)) {
      const value = nextSetValue.get(setKey) ?? 0;
      nextSetValue.set(setKey, value + 1);
      setsInFlight.add(setKey);
      track(
        buffer.set(documentId, setField, value),
        (outcome) => ledger.recordSet(setKey, value, outcome),
        () => setsInFlight.delete(setKey),
      );
      return;
    }
    const field = random.pick(INCREMENT_FIELDS);
    const delta = random.int(1, 9);
    const key = fieldKey(target.collection, documentId, field);
    track(buffer.increment(documentId, field, delta), (outcome) => ledger.recordIncrement(key, delta, outcome));
  };

  let credit = 0;
  const ticker = setInterval(() => {
    credit = Math.min(credit + (config.updatesPerSecond * TICK_MS) / 1000, config.updatesPerSecond);
    while (credit >= 1 && pending.size < config.maxInFlight) {
      credit -= 1;
      issue();
    }
  }, TICK_MS);

  process.on('message', async (message: ParentMessage) => {
    if (message.type !== 'stop') return;
    clearInterval(ticker);
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    while (pending.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    // Never settled: it may still be applied (a queued re-send), so it is ambiguous.
    for (const entry of [...pending]) {
      entry.settled = true;
      entry.record('ambiguous');
    }
    pending.clear();
    for (const { buffer } of buffers) buffer.destroy();
    redis.disconnect();
    send({ type: 'ledger', ledger: ledger.toJSON() }, () => process.exit(0));
  });
  send({ type: 'ready' });
}

// An orphan producer would keep writing into the next run's servers' ports: leave with the orchestrator.
process.on('disconnect', () => process.exit(1));
main().catch((error) => {
  console.error('producer failed:', error);
  process.exit(1);
});
