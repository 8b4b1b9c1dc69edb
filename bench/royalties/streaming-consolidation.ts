// The streaming consolidation alone (no MongoDB, no queue), in its own process with the event-loop probe:
// the parsing throughput and memory of `consolidateRoyalties` itself, with the streams threads the worker
// would use (ROYALTIES_STREAM_THREADS, default 2). With ROYALTIES_BENCH_LIB (set by `--compiled`) the
// library is loaded from `npm run build` output, so its streams threads run compiled JavaScript, not ts-node.
import { readCapabilityConfig } from '@bufferq/config';
import * as royalties from '@bufferq/royalties';

const [usersCsv, streamsCsv, tracks] = process.argv.slice(2);
const { consolidateRoyalties, inputPolicyOf, royaltiesEnv }: typeof royalties = process.env.ROYALTIES_BENCH_LIB
  ? require(process.env.ROYALTIES_BENCH_LIB)
  : royalties;
const config = readCapabilityConfig(royaltiesEnv, (key) => process.env[key]);
const streamThreads = config.ROYALTIES_STREAM_THREADS;
const inputPolicy = inputPolicyOf(config);

process.on('message', async (message) => {
  if (message !== 'go') return;
  const started = Date.now();
  const result = await consolidateRoyalties(
    { usersCsv, streamsCsv, tracks },
    { maxBadLineShare: 0.01, streamThreads, inputPolicy },
  );
  const ms = Date.now() - started;
  setTimeout(
    () =>
      process.send!({ type: 'done', lines: result.counts.streams.lines, streamThreads, users: result.ledger.size, ms }),
    50,
  );
});
process.send!({ type: 'ready' });
