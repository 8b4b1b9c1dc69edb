'use strict';
// Preloaded (`node -r`) into a process the royalties benchmark forks: measures that process's event-loop
// delay with perf_hooks and answers the parent over IPC, without touching the production code.
const { monitorEventLoopDelay } = require('node:perf_hooks');

// 1 ms sampling: each sample is the interval between two timer ticks, so an idle loop reads about 1 ms.
const histogram = monitorEventLoopDelay({ resolution: 1 });
histogram.enable();
const ms = (ns) => Math.round((ns / 1e6) * 100) / 100;

process.on('message', (message) => {
  if (message === 'loop:reset') histogram.reset();
  if (message === 'loop:report') {
    process.send({
      type: 'loop',
      p50: ms(histogram.percentile(50)),
      p99: ms(histogram.percentile(99)),
      max: ms(histogram.max),
      samples: histogram.count,
    });
  }
});
