// A timers worker in its own process, so a test can SIGKILL it mid-delivery. Settings come as JSON in
// TIMERS_CHILD_OPTIONS ({ redisUrl, mongoUrl, mongoDb, config }); prints `ready` once it runs.
import { startTimers } from './timers-harness';

void startTimers({ ...JSON.parse(process.env.TIMERS_CHILD_OPTIONS!), worker: true }).then(() =>
  process.stdout.write('ready\n'),
);

// A clean exit on request, so `node --cpu-prof` can write the worker's profile (the bench asks for it).
process.on('SIGUSR2', () => process.exit(0));
