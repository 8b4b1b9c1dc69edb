// Renders the Grafana dashboard's panels (grafana/dashboards/bufferq.json) with data from a local run, as a
// PNG for the docs: starts the api and a worker from the TypeScript sources, drives counters, timers and two
// royalties builds at them for RUN_SECONDS, scrapes both with a local Prometheus (`prometheus` on PATH,
// e.g. Debian's package), evaluates every panel query over the run and draws it (headless Chromium).
//   node tools/with-services.js ts-node -r tsconfig-paths/register --transpile-only deploy/observability/preview-dashboard.ts [out.png]
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, sleep, testServices, uniqueName, writeSyntheticInputs } from '@bufferq/testing';

const ROOT = resolve(__dirname, '..', '..');
const RUN_SECONDS = Number(process.env.RUN_SECONDS ?? 120);
const OUT = resolve(process.argv[2] ?? join(ROOT, 'docs', 'images', 'dashboard.png'));

interface Panel {
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: Array<{ expr: string; legendFormat: string }>;
}

const children: ChildProcess[] = [];
const start = (command: string, args: string[], env: NodeJS.ProcessEnv) => {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  return child;
};
const app = (name: 'api' | 'worker', env: NodeJS.ProcessEnv) =>
  start(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', `apps/${name}/src/main.ts`],
    { ...env, TS_NODE_PROJECT: join(ROOT, 'tsconfig.json') },
  );

async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up`);
    await sleep(200);
  }
}

async function main(): Promise<void> {
  const { redisUrl, mongoUrl } = testServices();
  const work = mkdtempSync(join(tmpdir(), 'bufferq-dashboard-'));
  const [apiPort, metricsPort, promPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const api = `http://127.0.0.1:${apiPort}`;
  // Webhook receiver: mostly 200, some 503 (retried) and some 404 (failed), answered after a few ms.
  const receiver = createServer((request, response) => {
    const roll = Math.random();
    setTimeout(() => response.writeHead(roll < 0.05 ? 503 : roll < 0.07 ? 404 : 200).end(), 2 + Math.random() * 20);
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  const hooks = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  const env = {
    ...process.env,
    REDIS_URL: redisUrl,
    MONGO_URL: mongoUrl,
    MONGO_DB: uniqueName('dashboard'),
    PORT: String(apiPort),
    HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    METRICS_HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_MAX: '0',
    BOARD_ENABLED: 'false',
    TIMERS_ALLOW_PRIVATE_TARGETS: 'true',
    TIMERS_REDIS_PREFIX: uniqueName('dashboard'),
    TIMERS_BACKOFF_BASE_MS: '1000',
    ROYALTIES_INPUT_ROOT: work,
  };
  app('api', env);
  app('worker', env);
  await until(async () => (await fetch(`${api}/health`)).ok, 'the api');
  await until(async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).ok, 'the worker');

  writeFileSync(
    join(work, 'prometheus.yml'),
    [
      'global: { scrape_interval: 2s }',
      'scrape_configs:',
      `  - { job_name: bufferq-api, static_configs: [{ targets: ["127.0.0.1:${apiPort}"] }] }`,
      `  - { job_name: bufferq-worker, static_configs: [{ targets: ["127.0.0.1:${metricsPort}"] }] }`,
    ].join('\n'),
  );
  start(
    'prometheus',
    [
      `--config.file=${join(work, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(work, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    process.env,
  );
  const prometheus = `http://127.0.0.1:${promPort}`;
  await until(async () => (await fetch(`${prometheus}/-/ready`)).ok, 'prometheus');

  const inputs = await writeSyntheticInputs(join(work, 'inputs'), { users: 5_000, streams: 100_000 });
  const startedAt = Date.now();
  let second = 0;
  const post = (path: string, body: unknown) =>
    fetch(`${api}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }).catch(() => undefined);
  while (Date.now() - startedAt < RUN_SECONDS * 1000) {
    second++;
    // Load that rises and falls, so the panels show shape rather than flat lines.
    const intensity = 1 + Math.sin(second / 15);
    const requests: Array<Promise<unknown>> = [];
    for (let i = 0; i < 8 * intensity; i++) {
      const increments = Array.from({ length: 25 }, () => ({
        key: `user-${Math.floor(Math.random() * 1000)}`,
        value: 1,
      }));
      requests.push(post('/api/v1/increment', { increments }));
    }
    for (let i = 0; i < 10 * intensity; i++)
      requests.push(post('/timers', { hours: 0, minutes: 0, seconds: 1 + Math.floor(Math.random() * 4), url: hooks }));
    if (second === 10 || second === Math.floor(RUN_SECONDS / 2)) requests.push(post('/royalties/builds', inputs));
    await Promise.all(requests);
    await sleep(Math.max(0, startedAt + second * 1000 - Date.now()));
  }
  await sleep(5_000);

  const dashboard = JSON.parse(readFileSync(join(__dirname, 'grafana', 'dashboards', 'bufferq.json'), 'utf8')) as {
    title: string;
    panels: Panel[];
  };
  const end = Date.now() / 1000;
  const begin = end - RUN_SECONDS - 5;
  const panels = await Promise.all(
    dashboard.panels.map(async (panel) => ({
      panel,
      series: (
        await Promise.all(
          (panel.targets ?? []).map(async (target) => {
            const query = new URL(`${prometheus}/api/v1/query_range`);
            query.search = new URLSearchParams({
              query: target.expr,
              start: String(begin),
              end: String(end),
              step: '2',
            }).toString();
            const body = (await (await fetch(query)).json()) as {
              data: { result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> };
            };
            return body.data.result.map((result) => ({
              name: target.legendFormat.replace(/\{\{(\w+)\}\}/g, (_, label: string) => result.metric[label] ?? ''),
              points: result.values
                .map(([t, v]) => [t, Number(v)] as [number, number])
                .filter(([, v]) => Number.isFinite(v)),
            }));
          }),
        )
      ).flat(),
    })),
  );
  writeFileSync(join(work, 'dashboard.html'), page(dashboard.title, panels, begin, end));
  const shot = spawnSync(
    'chromium',
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      `--screenshot=${OUT}`,
      '--window-size=1600,1900',
      '--hide-scrollbars',
      `file://${join(work, 'dashboard.html')}`,
    ],
    { stdio: 'inherit' },
  );
  if (shot.status !== 0) throw new Error('chromium failed');
  console.log(`wrote ${OUT}`);
}

const COLOURS = ['#73bf69', '#f2cc0c', '#5794f2', '#ff780a', '#b877d9', '#f2495c', '#8ab8ff', '#fade2a'];

function format(value: number, unit: string | undefined): string {
  const abs = Math.abs(value);
  if (unit === 'bytes') return `${(value / 2 ** 20).toFixed(0)} MiB`;
  if (unit === 'percentunit') return `${(value * 100).toFixed(0)}%`;
  if (unit === 's')
    return abs >= 1 || value === 0 ? `${value.toFixed(1)} s` : `${(value * 1000).toFixed(abs < 0.01 ? 2 : 0)} ms`;
  return abs >= 1e6
    ? `${(value / 1e6).toFixed(1)}M`
    : abs >= 1e3
      ? `${(value / 1e3).toFixed(1)}k`
      : `${+value.toFixed(2)}`;
}

function chart(
  series: Array<{ name: string; points: Array<[number, number]> }>,
  begin: number,
  end: number,
  unit?: string,
): string {
  const [w, h, left, bottom] = [360, 150, 56, 14];
  const values = series.flatMap((s) => s.points.map(([, v]) => v));
  if (!values.length) return '<div class="nodata">No data</div>';
  const max = Math.max(...values, 0) || 1;
  const min = Math.min(...values, 0);
  const x = (t: number) => left + ((t - begin) / (end - begin)) * (w - left);
  const y = (v: number) => 4 + (1 - (v - min) / (max - min || 1)) * (h - bottom - 4);
  const grid = [0, 0.5, 1]
    .map((f) => min + f * (max - min))
    .map(
      (v) =>
        `<line x1="${left}" x2="${w}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${left - 4}" y="${y(v) + 3}" class="axis">${format(v, unit)}</text>`,
    )
    .join('');
  const lines = series
    .map(
      (s, i) =>
        `<polyline fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.5" points="${s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`,
    )
    .join('');
  const legend = series
    .slice(0, 6)
    .map((s, i) => `<span><i style="background:${COLOURS[i % COLOURS.length]}"></i>${s.name}</span>`)
    .join('');
  return `<svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none">${grid}${lines}</svg><div class="legend">${legend}</div>`;
}

function page(
  title: string,
  panels: Array<{ panel: Panel; series: Array<{ name: string; points: Array<[number, number]> }> }>,
  begin: number,
  end: number,
): string {
  const cells = panels
    .map(({ panel, series }) => {
      const area = `grid-column:${panel.gridPos.x + 1}/span ${panel.gridPos.w};grid-row:${panel.gridPos.y + 1}/span ${panel.gridPos.h}`;
      if (panel.type === 'row') return `<h2 style="${area}">${panel.title}</h2>`;
      return `<section style="${area}"><h3>${panel.title}</h3>${chart(series, begin, end, panel.fieldConfig?.defaults?.unit)}</section>`;
    })
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;padding:12px;background:#111217;color:#ccccdc;font:12px Inter,Helvetica,Arial,sans-serif}
h1{font-size:16px;margin:0 0 8px} main{display:grid;grid-template-columns:repeat(24,1fr);grid-auto-rows:30px;gap:6px}
h2{font-size:13px;margin:8px 0 0;align-self:end} section{background:#181b1f;border:1px solid #2a2d33;border-radius:3px;padding:6px 8px;overflow:hidden;display:flex;flex-direction:column}
h3{font-size:12px;margin:0 0 4px;color:#d8d9da} svg{flex:1;width:100%} .grid{stroke:#2a2d33} .axis{fill:#8e8e8e;font-size:9px;text-anchor:end}
.legend{display:flex;flex-wrap:wrap;gap:2px 10px;font-size:10px} .legend i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
.nodata{flex:1;display:flex;align-items:center;justify-content:center;color:#777}
</style></head><body><h1>${title} — a ${RUN_SECONDS} s local run</h1><main>${cells}</main></body></html>`;
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill('SIGTERM');
    setTimeout(() => process.exit(), 3_000).unref();
  });
