// The streaming consolidation alone (no MongoDB, no queue), in its own process with the event-loop probe:
// the parsing throughput and memory of `consolidateRoyalties` itself.
import { consolidateRoyalties } from '@bufferq/royalties';

const [usersCsv, streamsCsv, tracks] = process.argv.slice(2);

process.on('message', async (message) => {
  if (message !== 'go') return;
  const started = Date.now();
  const result = await consolidateRoyalties({ usersCsv, streamsCsv, tracks }, { maxBadLineShare: 0.01 });
  const ms = Date.now() - started;
  setTimeout(() => process.send!({ type: 'done', lines: result.counts.streams.lines, users: result.ledger.size, ms }), 50);
});
process.send!({ type: 'ready' });
