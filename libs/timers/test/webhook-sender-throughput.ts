// WebhookSender alone against a keep-alive receiver in another process: POSTs/s and CPU per POST, cold
// (first round: connections and JIT) and warm. No Redis, MongoDB, BullMQ: the sending path's own ceiling.
// npx ts-node -r tsconfig-paths/register --transpile-only libs/timers/test/webhook-sender-throughput.ts
//   [concurrency=200] [rounds=2000,2000,20000,20000]
import { spawn } from 'node:child_process';
import { timersEnv } from '../src/timers.env';
import { WebhookSender } from '../src/delivery/webhook/webhook-sender';

const RECEIVER = `
const server = require('node:http').createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200).end());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

async function main(): Promise<void> {
  const [concurrency = '200', rounds = '2000,2000,20000,20000'] = process.argv.slice(2);
  const receiver = spawn(process.execPath, ['-e', RECEIVER], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<string>((resolve) =>
    receiver.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())),
  );
  const sender = new WebhookSender(
    timersEnv.parse({
      TIMERS_ALLOW_PRIVATE_TARGETS: 'true',
      TIMERS_DELIVERY_CONCURRENCY: concurrency,
      TIMERS_MAX_CONCURRENCY_PER_HOST: concurrency,
    }),
  );
  try {
    for (const count of rounds.split(',').map(Number)) {
      const started = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      const outcomes = await Promise.all(
        Array.from({ length: count }, (_, i) => sender.send(`http://127.0.0.1:${port}/t`, `id${i}`)),
      );
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const used = process.cpuUsage(cpu);
      const cpuUs = (used.user + used.system) / count;
      const failed = outcomes.filter((outcome) => !outcome.delivered).length;
      console.log(
        `${count} POSTs in ${ms.toFixed(0)} ms: ${Math.round((count / ms) * 1000)}/s, ${cpuUs.toFixed(0)} us CPU per POST, ${failed} failed`,
      );
    }
  } finally {
    await sender.onModuleDestroy();
    receiver.kill();
  }
}

void main();
