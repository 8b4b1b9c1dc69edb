// The batch row's producer alone, for bench:http: the api's `incrementAll` calls (one per request, the
// same bodies, parsed and mapped in advance as CountersService maps them) from BENCH_CONNECTIONS
// concurrent callers for BENCH_DURATION_S, with no HTTP, JSON or validation: what the producer and Redis
// carry on this machine, the ceiling of the api's batch form. Prints one JSON line: calls, seconds, and
// this process's CPU seconds over the measured part.
import { MongoClient } from 'mongodb';
import { Redis } from 'ioredis';
import { BufferedMongoIncrements } from '@bufferq/buffered-increments';
import { batchBodies } from './batch-bodies';

async function main(): Promise<void> {
  const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
  const callers = Number(process.env.BENCH_CONNECTIONS ?? 50);
  const redis = new Redis(process.env.REDIS_URL!);
  const mongo = await MongoClient.connect(process.env.MONGO_URL!);
  const calls = batchBodies.map((body) =>
    (JSON.parse(body) as { increments: Array<{ key: string; value: number }> }).increments.map(({ key, value }) => ({
      documentId: key,
      fieldPath: 'value',
      delta: value,
    })),
  );
  const buffered = new BufferedMongoIncrements(mongo.db(process.env.MONGO_DB).collection('counters'), redis, 60_000, {
    namespace: `bench-http-producer-${process.pid}`,
    autoFlush: false,
  });
  const run = async (seconds: number) => {
    let sent = 0;
    const until = Date.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: callers }, async () => {
        while (Date.now() < until) await buffered.incrementAll(calls[sent++ % calls.length]);
      }),
    );
    return sent;
  };
  await run(2); // warm-up, as autocannon's
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  const sent = await run(durationS);
  const seconds = (performance.now() - startedAt) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  process.stdout.write(`${JSON.stringify({ calls: sent, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`);
  buffered.destroy();
  redis.disconnect();
  await mongo.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
