// The naive baseline the royalties benchmark compares with: read each file whole, split it into lines and
// fields, accumulate in plain objects with floating-point money, all in one synchronous stretch. It is
// what "load every file into memory and crunch" looks like; it runs in its own process (forked with the
// event-loop probe) so its peak RSS and the stall it causes are measured like the worker's.
import { readFileSync } from 'node:fs';

const [usersCsv, streamsCsv, tracksJson] = process.argv.slice(2);

function run(): { lines: number; ms: number; labels: number } {
  const started = Date.now();
  const tracks = JSON.parse(readFileSync(tracksJson, 'utf8')) as Array<Record<string, string>>;
  const trackLabel: Record<string, string> = {};
  for (const track of tracks) {
    const [id, , label] = Object.values(track);
    trackLabel[id] = label;
  }
  let revenue = 0;
  for (const line of readFileSync(usersCsv, 'utf8').split(/\r?\n/).slice(1)) {
    const [, , fee, origin] = line.split(';');
    if (fee) revenue += parseFloat(fee.replace(',', '.')) * (origin === 'web' ? 0.9 : 0.7);
  }
  const userSeconds: Record<string, number> = {};
  const labelSeconds: Record<string, number> = {};
  let total = 0;
  const lines = readFileSync(streamsCsv, 'utf8').split(/\r?\n/);
  for (let i = 1; i < lines.length; i++) {
    const [, user, , track, seconds] = lines[i].split(';');
    const value = Number(seconds);
    userSeconds[user] = (userSeconds[user] ?? 0) + value;
    const label = trackLabel[track];
    if (label !== undefined) {
      labelSeconds[label] = (labelSeconds[label] ?? 0) + value;
      total += value;
    }
  }
  const payouts = Object.fromEntries(
    Object.entries(labelSeconds).map(([label, seconds]) => [label, (revenue * seconds) / total]),
  );
  return { lines: lines.length - 1, ms: Date.now() - started, labels: Object.keys(payouts).length };
}

// The parent resets the loop probe, waits, then says go: the whole computation blocks the loop.
process.on('message', (message) => {
  if (message !== 'go') return;
  const result = run();
  setTimeout(() => process.send!({ type: 'done', ...result }), 50);
});
process.send!({ type: 'ready' });
