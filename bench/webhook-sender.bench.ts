// npm run bench:webhooks [-- --concurrency 200 --rounds 2000,2000,20000,20000]
// WebhookSender alone against a keep-alive receiver in another process: POSTs/s and CPU per POST, round by
// round, so the first rounds show the cold start (new connections, code not yet JIT-compiled) and the
// later ones the warm rate. No Redis, MongoDB or BullMQ: the sending path's own ceiling.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { timersEnv, WebhookSender } from '@bufferq/timers';

const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '2000,2000,20000,20000' },
  },
});

const RECEIVER = `
const server = require('node:http').createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200).end());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const receiver = spawn(process.execPath, ['-e', RECEIVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) =>
    receiver.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())),
  );
  const sender = new WebhookSender(
    timersEnv.parse({
      TIMERS_ALLOW_PRIVATE_TARGETS: 'true',
      TIMERS_DELIVERY_CONCURRENCY: args.concurrency,
      TIMERS_MAX_CONCURRENCY_PER_HOST: args.concurrency,
    }),
  );
  const rows: string[][] = [];
  try {
    for (const [round, count] of args.rounds.split(',').map(Number).entries()) {
      const started = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      const outcomes = await Promise.all(
        Array.from({ length: count }, (_, i) => sender.send(`http://127.0.0.1:${port}/t`, `id${i}`)),
      );
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const used = process.cpuUsage(cpu);
      const failed = outcomes.filter((outcome) => !outcome.delivered).length;
      rows.push([
        String(round + 1),
        fmt(count),
        fmt(ms),
        fmt((count / ms) * 1000),
        `${fmt((used.user + used.system) / count)} us`,
        fmt(failed),
      ]);
    }
  } finally {
    await sender.onApplicationShutdown();
    receiver.kill();
  }
  console.log(`\nWebhookSender, ${args.concurrency} in flight, one keep-alive receiver in another process\n`);
  console.log('| round | POSTs | ms | POSTs/s | CPU per POST | failed |\n|---|---|---|---|---|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
