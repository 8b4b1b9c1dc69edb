// npm run bench:royalties -- [--streams 10000000] [--users 1000000] [--tracks 100000] [--naive-streams 2000000]
//                            [--keep] [--compiled]
//
// Generates synthetic inputs in a temporary directory (deleted afterwards unless --keep), starts the api
// and a `royalties` worker as separate processes (as production runs them; from the TypeScript sources
// with ts-node, or with --compiled from `npm run build` output), and measures one build:
// stream lines per second, the worker's peak RSS, and the api's event-loop delay while the build runs.
// The same run compares with the streaming consolidation alone and with a naive read-it-all baseline.
import { ChildProcess, execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, writeSyntheticInputs } from '@bufferq/testing';

const root = resolve(__dirname, '..');
const probe = join(__dirname, 'royalties', 'event-loop-probe.js');
const tsNode = ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register'];

interface LoopStats {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

function flags() {
  const { values } = parseArgs({
    options: {
      streams: { type: 'string', default: '10000000' },
      users: { type: 'string', default: '1000000' },
      tracks: { type: 'string', default: '100000' },
      'naive-streams': { type: 'string', default: '2000000' },
      keep: { type: 'boolean', default: false },
      compiled: { type: 'boolean', default: false },
    },
  });
  const int = (text: string) => Number(text.replace(/_/g, ''));
  return {
    streams: int(values.streams!),
    users: int(values.users!),
    tracks: int(values.tracks!),
    naiveStreams: int(values['naive-streams']!),
    keep: values.keep!,
    tsNode: !values.compiled!,
  };
}

/** Peak and current resident set of a process, from /proc (Linux). */
function memoryOf(pid: number): { peakMb: number; rssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { peakMb: Math.round(kb('VmHWM') / 1024), rssMb: Math.round(kb('VmRSS') / 1024) };
}

function forkTs(script: string, args: string[], env: NodeJS.ProcessEnv, withProbe: boolean): ChildProcess {
  return forkNode(script, args, env, [...tsNode, ...(withProbe ? ['-r', probe] : [])]);
}

function forkNode(script: string, args: string[], env: NodeJS.ProcessEnv, execArgv: string[]): ChildProcess {
  return fork(script, args, {
    cwd: root,
    env: { ...process.env, ...env },
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** The api and worker entry points: the compiled build as production runs it, or the TypeScript sources. */
function appEntryPoints(useTsNode: boolean): { api: string; worker: string; execArgv: string[] } {
  if (useTsNode) return { api: 'apps/api/src/main.ts', worker: 'apps/worker/src/main.ts', execArgv: tsNode };
  process.stdout.write('building the apps (npm run build) ...\n');
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  return { api: 'dist/apps/api/src/main.js', worker: 'dist/apps/worker/src/main.js', execArgv: [] };
}

interface BuildStatus {
  status: string;
  error?: string;
  startedAt: string;
  finishedAt: string;
  totalRevenue: number;
  progress?: { phase: string };
  counts: { users: { listed: number }; tracks: { count: number }; streams: { lines: number } };
}

function nextMessage<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolveMessage, reject) => {
    const onMessage = (message: { type?: string }) => {
      if (message?.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolveMessage(message as T);
    };
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`child exited (${code ?? signal}) before sending ${type}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function loopStats(child: ChildProcess): Promise<LoopStats> {
  const reply = nextMessage<LoopStats>(child, 'loop');
  child.send('loop:report');
  return reply;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await once(child, 'exit');
  clearTimeout(timer);
}

async function http<T = unknown>(
  port: number,
  method: string,
  path: string,
  body?: object,
): Promise<{ status: number; json: T; ms: number }> {
  const started = performance.now();
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = (await response.json().catch(() => null)) as T;
  return { status: response.status, json, ms: performance.now() - started };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
};
const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 1 });

/** Runs a forked measurement script (`ready` -> go -> `done`) and returns its result, peak RSS and loop stall. */
async function runMeasured(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ lines: number; ms: number; peakMb: number; loop: LoopStats; streamThreads?: number } | { error: string }> {
  const child = forkTs(script, args, env, true);
  try {
    await nextMessage(child, 'ready');
    child.send('loop:reset');
    await sleep(200); // samples before the work starts, so the first stall is measured against them
    child.send('go');
    const done = await nextMessage<{ lines: number; ms: number; streamThreads?: number }>(child, 'done');
    const loop = await loopStats(child);
    return {
      lines: done.lines,
      ms: done.ms,
      peakMb: memoryOf(child.pid!).peakMb,
      loop,
      streamThreads: done.streamThreads,
    };
  } catch (error) {
    return { error: (error as Error).message };
  } finally {
    await stop(child);
  }
}

async function main(): Promise<void> {
  const options = flags();
  const loadAverage = () =>
    os
      .loadavg()
      .map((load) => load.toFixed(2))
      .join(' ');
  const loadAtStart = loadAverage();
  const dir = await mkdtemp(join(tmpdir(), 'royalties-bench-'));
  const children: ChildProcess[] = [];
  try {
    process.stdout.write(
      `generating ${fmt(options.streams)} stream lines, ${fmt(options.users)} users, ${fmt(options.tracks)} tracks in ${dir} ...\n`,
    );
    let started = Date.now();
    const inputs = await writeSyntheticInputs(join(dir, 'full'), {
      users: options.users,
      streams: options.streams,
      tracks: options.tracks,
    });
    process.stdout.write(`  generated in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

    const port = await freePort();
    const env = {
      PORT: String(port),
      HOST: '127.0.0.1',
      MONGO_DB: `royalties_bench_${Date.now().toString(36)}`,
      ROYALTIES_QUEUE: `royalties-bench-${Date.now().toString(36)}`,
      WORKER_ROLES: 'royalties',
      LOG_LEVEL: 'warn',
      // Builds read local inputs only inside the input root.
      ROYALTIES_INPUT_ROOT: dir,
    };
    const apps = appEntryPoints(options.tsNode);
    const api = forkNode(apps.api, [], env, [...apps.execArgv, '-r', probe]);
    const worker = forkNode(apps.worker, [], env, apps.execArgv);
    children.push(api, worker);
    for (let i = 0; ; i++) {
      if (i > 600) throw new Error('the api did not start within 60 s');
      if (
        await http(port, 'GET', '/report').then(
          () => true,
          () => false,
        )
      )
        break;
      await sleep(100);
    }
    await sleep(2_000); // let the worker finish booting too
    const workerIdle = memoryOf(worker.pid!);

    // The api's event loop with the same polling load and no build, for reference.
    api.send('loop:reset');
    const idleLatencies: number[] = [];
    for (const end = Date.now() + 3_000; Date.now() < end; await sleep(50))
      idleLatencies.push((await http(port, 'GET', '/royalties/builds/000000000000000000000000')).ms);
    const idleLoop = await loopStats(api);

    api.send('loop:reset');
    started = Date.now();
    const { json: startedBuild } = await http<{ buildId: string }>(port, 'POST', '/royalties/builds', inputs);
    const buildId = startedBuild.buildId;
    const latencies: number[] = [];
    let build: BuildStatus;
    let persistingSeenAt: number | null = null;
    for (;;) {
      const response = await http<BuildStatus>(port, 'GET', `/royalties/builds/${buildId}`);
      latencies.push(response.ms);
      build = response.json;
      if (build.progress?.phase === 'persisting' && persistingSeenAt === null) persistingSeenAt = Date.now();
      if (['succeeded', 'failed', 'cancelled'].includes(build.status)) break;
      await sleep(50);
    }
    const buildLoop = await loopStats(api);
    const workerPeak = memoryOf(worker.pid!);
    if (build.status !== 'succeeded') throw new Error(`build ${build.status}: ${build.error}`);
    const totalMs = new Date(build.finishedAt).getTime() - new Date(build.startedAt).getTime();
    const readMs = (persistingSeenAt ?? Date.now()) - started;
    const report = await http<Record<string, number>>(port, 'GET', '/report');
    const userProbe = await http(port, 'GET', '/users/u0');
    // Read endpoints on the finished build (one request each, after a warm-up of the same request).
    const reads: string[][] = [];
    for (const path of [
      '/report',
      '/revenue',
      '/users/u123456',
      '/users?limit=100',
      '/users?after=u5&limit=100',
      '/consolidated?limit=100',
    ]) {
      await http(port, 'GET', path);
      const timed = await http(port, 'GET', path);
      reads.push([`GET ${path}`, String(timed.status), `${timed.ms.toFixed(1)} ms`]);
    }
    await Promise.all(children.splice(0).map(stop));

    process.stdout.write('streaming consolidation alone (same inputs, own process) ...\n');
    const compiledLib = {
      ROYALTIES_INPUT_ROOT: dir,
      ...(options.tsNode ? {} : { ROYALTIES_BENCH_LIB: join(root, 'dist', 'libs', 'royalties', 'src') }),
    };
    const streamingAlone = await runMeasured(
      join(__dirname, 'royalties', 'streaming-consolidation.ts'),
      [inputs.usersCsv, inputs.streamsCsv, inputs.tracks],
      compiledLib,
    );

    const naiveSize = Math.min(options.naiveStreams, options.streams);
    const naiveInputs =
      naiveSize === options.streams
        ? inputs
        : await writeSyntheticInputs(join(dir, 'naive'), {
            users: Math.max(1, Math.round((options.users * naiveSize) / options.streams)),
            streams: naiveSize,
            tracks: options.tracks,
          });
    process.stdout.write(`naive baseline (${fmt(naiveSize)} lines, read whole files + split) ...\n`);
    const naive = await runMeasured(join(__dirname, 'royalties', 'naive-consolidation.ts'), [
      naiveInputs.usersCsv,
      naiveInputs.streamsCsv,
      naiveInputs.tracks,
    ]);

    const streamLines = build.counts.streams.lines;
    const rows: string[][] = [
      ['variant', 'stream lines', 'time', 'lines/s', 'peak RSS', 'event-loop delay p99 / max'],
      [
        'build via api -> BullMQ -> worker process: reading phase',
        fmt(streamLines),
        `${(readMs / 1000).toFixed(1)} s`,
        fmt(Math.round(streamLines / (readMs / 1000))),
        `worker ${workerPeak.peakMb} MB (idle ${workerIdle.rssMb} MB)${options.tsNode ? ' [ts-node]' : ''}`,
        `api ${buildLoop.p99} / ${buildLoop.max} ms`,
      ],
      [
        'same build end to end (incl. persisting users + tracks)',
        fmt(streamLines),
        `${(totalMs / 1000).toFixed(1)} s`,
        fmt(Math.round(streamLines / (totalMs / 1000))),
        '',
        `api request p99 ${percentile(latencies, 99).toFixed(1)} ms (${latencies.length} polls)`,
      ],
      [
        'api idle, same polling, no build (reference)',
        '',
        '3.0 s',
        '',
        '',
        `api ${idleLoop.p99} / ${idleLoop.max} ms; request p99 ${percentile(idleLatencies, 99).toFixed(1)} ms`,
      ],
      measuredRow(
        `streaming consolidation alone (${'error' in streamingAlone ? '?' : streamingAlone.streamThreads} streams threads, no DB), own process${options.tsNode ? ' [ts-node]' : ' [script under ts-node, library compiled]'}`,
        streamingAlone,
      ),
      measuredRow('naive: read whole files, split, float money (own process)', naive),
    ];
    process.stdout.write(`\n${table(rows)}\n${table([['read after the build', 'status', 'latency'], ...reads])}\n`);
    process.stdout.write(
      `build ${buildId}: ${fmt(build.counts.users.listed)} users, ${fmt(build.counts.tracks.count)} tracks, revenue ${build.totalRevenue}; ` +
        `/report has ${Object.keys(report.json ?? {}).length} labels; /users/u0 -> ${userProbe.status}\n` +
        `machine: ${os.cpus().length} CPUs (api, worker, Redis and the MongoDB-wire server share them), node ${process.version}; ` +
        `load average (1, 5, 15 min) ${loadAtStart} at the start, ${loadAverage()} at the end\n`,
    );
  } finally {
    await Promise.all(children.map(stop));
    if (!options.keep) await rm(dir, { recursive: true, force: true });
    else process.stdout.write(`inputs kept in ${dir}\n`);
  }
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  return `${line(rows[0])}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${rows.slice(1).map(line).join('\n')}\n`;
}

function measuredRow(name: string, result: Awaited<ReturnType<typeof runMeasured>>): string[] {
  if ('error' in result) return [name, '', '', '', '', `failed: ${result.error}`];
  return [
    name,
    fmt(result.lines),
    `${(result.ms / 1000).toFixed(1)} s`,
    fmt(Math.round(result.lines / (result.ms / 1000))),
    `${result.peakMb} MB`,
    `own loop ${result.loop.p99} / ${result.loop.max} ms`,
  ];
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exitCode = 1;
});
