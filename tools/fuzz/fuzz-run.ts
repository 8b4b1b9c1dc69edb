// npm run fuzz [-- --requests 10000 --seed 42 --concurrency 20 --json result.json --trace requests.jsonl --keep-logs]
//
// Starts the api and the worker as processes (on REDIS_URL / MONGO_URL; `npm run fuzz` starts those),
// reads the api's OpenAPI document and sends generated requests to every route it lists, to the routes
// it leaves out (metrics, docs, Bull Board) and to random paths: every JSON type and size, odd Unicode,
// NUL bytes, huge and negative numbers, deep nesting, wrong content types, bad headers, long URLs and
// malformed HTTP. Then it checks: no 5xx, every request answered, both processes alive and /health up,
// api memory stable after warm-up, and every increment the api accepted (and none it refused) in
// MongoDB once the worker flushed; timers and royalties builds the api accepted all settle.
// Exit code 0: nothing found; 1: findings (printed); 2: the run itself failed.
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { Client } from 'undici';
import { BufferedMongoIncrements } from '@bufferq/buffered-increments';
import { sleep } from '@bufferq/testing';
import { DomainValues } from './domain-values';
import { FuzzApp, FuzzSystem, MemoryAfterGc } from './fuzz-system';
import { FuzzResponse, HttpSender } from './http-sender';
import { IncrementLedger } from './increment-ledger';
import { JsonSchema } from './json-values';
import { percentEncoded } from './percent-encoding';
import { FuzzRequest, RequestGenerator } from './request-generator';
import {
  describeRequest,
  Finding,
  formatReport,
  FuzzResult,
  logLinesFor,
  MemoryFigures,
  STATUS_CLASSES,
  StatusClass,
  statusClass,
} from './report';
import { OpenApiDocument, routesOf } from './routes';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '20' },
    json: { type: 'string' },
    /** Every request and its answer, one JSON line each. */
    trace: { type: 'string' },
    'timeout-ms': { type: 'string', default: '30000' },
    'rss-growth-mb': { type: 'string', default: '100' },
    'keep-logs': { type: 'boolean', default: false },
  },
});
const REQUESTS = Number(args.requests);
const SEED = args.seed !== undefined ? Number(args.seed) : Date.now() % 1_000_000;
const CONCURRENCY = Number(args.concurrency);
const TIMEOUT_MS = Number(args['timeout-ms']);
const RSS_GROWTH_BOUND = Number(args['rss-growth-mb']) * 1024 * 1024;
for (const [flag, value] of Object.entries({
  requests: REQUESTS,
  seed: SEED,
  concurrency: CONCURRENCY,
  'timeout-ms': TIMEOUT_MS,
  'rss-growth-mb': RSS_GROWTH_BOUND,
})) {
  if (!Number.isInteger(value) || value < 0 || (flag !== 'seed' && value === 0))
    throw new Error(`--${flag} must be a positive integer`);
}

/** Fastify's bodyLimit in apps/api (1 MiB). */
const BODY_LIMIT = 1024 * 1024;
const WARM_UP_REQUESTS = Math.min(1_000, Math.ceil(REQUESTS / 10));
const MEMORY_SAMPLE_EVERY = Math.max(100, Math.ceil(REQUESTS / 10));
const DRAIN_TIMEOUT_MS = 120_000;
const SETTLE_TIMEOUT_MS = 90_000;
const TERMINAL_BUILD = new Set(['succeeded', 'failed', 'cancelled']);
const COUNTERS_COLLECTION = 'counters';
const TIMERS_COLLECTION = 'timers';

const startedAt = Date.now();
function log(message: string): void {
  process.stderr.write(`[fuzz ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
}

/** Everything the requests phase saw. */
class Observations {
  readonly byClass = Object.fromEntries(STATUS_CLASSES.map((name) => [name, 0])) as Record<StatusClass, number>;
  readonly byRoute: Record<string, Record<StatusClass, number>> = {};
  readonly findings = new Map<string, Finding>();
  readonly timerIds = new Set<string>();
  readonly buildIds = new Set<string>();
  closedWithoutResponse = 0;
  rawSent = 0;

  constructor(
    private readonly domain: DomainValues,
    private readonly ledger: IncrementLedger,
  ) {}

  record(request: FuzzRequest, response: FuzzResponse): void {
    const kind = statusClass(response);
    this.byClass[kind] += 1;
    const row = request.label.startsWith('wrong method') ? 'wrong method (any route)' : request.label;
    this.byRoute[row] ??= Object.fromEntries(STATUS_CLASSES.map((name) => [name, 0])) as Record<StatusClass, number>;
    this.byRoute[row][kind] += 1;
    if (response.raw) this.rawSent += 1;
    this.ledger.record(request, response);

    if (kind === '5xx') {
      this.find('5xx', request, response, messageOf(response.body));
    } else if (kind === 'no response') {
      // A malformed message, or a body over the limit, may be refused by closing the connection; anything else must be answered.
      const closed = response.error === 'closed without response' || /ECONNRESET|EPIPE/.test(response.error ?? '');
      if (closed && (request.raw || (request.body?.length ?? 0) > BODY_LIMIT)) this.closedWithoutResponse += 1;
      else this.find('no response', request, response, response.error ?? 'no answer');
    } else if (kind === '2xx' && !request.raw) {
      this.harvest(request, response);
    }
  }

  private harvest(request: FuzzRequest, response: FuzzResponse): void {
    let body: unknown;
    try {
      body = JSON.parse(response.body);
    } catch {
      return;
    }
    const family = request.target.split(/[/?]/)[1] ?? '';
    this.domain.harvest(family, body);
    const fields = (body ?? {}) as { id?: unknown; buildId?: unknown };
    if (request.label === 'POST /timers' && typeof fields.id === 'string') this.timerIds.add(fields.id);
    if (request.label === 'POST /royalties/builds' && typeof fields.buildId === 'string')
      this.buildIds.add(fields.buildId);
  }

  private find(kind: Finding['kind'], request: FuzzRequest, response: FuzzResponse, message: string): void {
    const signature = `${kind} ${request.label} ${response.status ?? ''} ${message.slice(0, 120)}`;
    const known = this.findings.get(signature);
    if (known) {
      known.count += 1;
      return;
    }
    this.findings.set(signature, {
      kind,
      label: request.label,
      status: response.status,
      message,
      count: 1,
      example: {
        index: request.index,
        request: describeRequest(request),
        response: `${response.status ?? response.error} ${response.body.slice(0, 500)}`,
        requestId: response.requestId ?? request.requestId,
        log: [],
      },
    });
  }
}

function messageOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    return typeof parsed.message === 'string' ? parsed.message : body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}

interface MemorySamples {
  boot?: number;
  warm?: MemoryAfterGc;
  end?: number;
  settled?: MemoryAfterGc;
}

/** Growth is measured between two forced full GCs: after the warm-up and after settling. */
function memoryFigures(app: FuzzApp, samples: MemorySamples): MemoryFigures | undefined {
  const { boot, warm, end, settled } = samples;
  if (boot === undefined || !warm || !settled) return undefined;
  return {
    bootRss: boot,
    warmRss: warm.rss,
    endRss: end ?? NaN,
    settledRss: settled.rss,
    peakRss: app.memory()?.peakRss ?? NaN,
    growth: settled.rss - warm.rss,
    warmHeap: warm.heapUsed,
    settledHeap: settled.heapUsed,
    heapGrowth: settled.heapUsed - warm.heapUsed,
  };
}

async function main(): Promise<number> {
  const redisUrl = process.env.REDIS_URL;
  const mongoUrl = process.env.MONGO_URL;
  if (!redisUrl || !mongoUrl)
    throw new Error('REDIS_URL and MONGO_URL must be set: run `npm run fuzz`, which starts both');
  const runDir = mkdtempSync(join(tmpdir(), `bufferq-fuzz-${SEED}-`));
  const system = new FuzzSystem({ seed: SEED, redisUrl, mongoUrl, runDir });
  const closers: Array<() => Promise<unknown>> = [() => system.stop()];
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the api and the worker`);
      void system.stop().finally(() => process.exit(130));
    });
  }
  try {
    log(`seed ${SEED}, ${REQUESTS} requests, concurrency ${CONCURRENCY}; database ${system.dbName}; logs in ${runDir}`);
    await system.start();
    const document = (await system.openApiDocument()) as OpenApiDocument;
    const routes = routesOf(document);
    log(
      `api at ${system.origin} (pid ${system.api.pid}), worker pid ${system.worker.pid}; ${routes.length} routes (${routes.filter((route) => route.source === 'openapi').length} from the OpenAPI document)`,
    );

    const domain = new DomainValues(SEED, system.receiver.origin);
    const generator = new RequestGenerator(
      {
        seed: SEED,
        apiKey: system.apiKey,
        boardAuthorization: system.boardAuthorization,
        bodyLimit: BODY_LIMIT,
      },
      routes,
      (document.components?.schemas ?? {}) as Record<string, JsonSchema>,
      domain,
    );
    const ledger = new IncrementLedger();
    const observations = new Observations(domain, ledger);
    const sender = new HttpSender(system.origin, CONCURRENCY, TIMEOUT_MS);
    closers.unshift(() => sender.close());
    const memory: Record<'api' | 'worker', MemorySamples> = {
      api: { boot: system.api.memory()?.rss },
      worker: { boot: system.worker.memory()?.rss },
    };
    let warmSampling: Promise<unknown> = Promise.resolve();

    const trace = args.trace ? createWriteStream(args.trace) : undefined;
    closers.unshift(async () => trace && (await new Promise((resolve) => trace.end(resolve))));

    // Requests.
    const rssCurve: FuzzResult['memory']['curve'] = [
      { requests: 0, api: memory.api.boot ?? NaN, worker: memory.worker.boot ?? NaN },
    ];
    const began = Date.now();
    let next = 0;
    let done = 0;
    let lastLog = Date.now();
    // A bug of the fuzzer itself stops every sender and fails the run (exit 2), after the others finished their request.
    let failure: unknown;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < REQUESTS && failure === undefined) {
          const index = next++;
          try {
            const request = generator.request(index);
            const response = await sender.send(request);
            observations.record(request, response);
            trace?.write(
              `${JSON.stringify({ index, label: request.label, request: describeRequest(request).slice(0, 2_000), status: response.status, error: response.error, ms: Math.round(response.ms), answer: response.body.slice(0, 300) })}\n`,
            );
          } catch (error) {
            failure ??= new Error(`the fuzzer failed on request #${index}`, { cause: error });
          }
          done += 1;
          if (done === WARM_UP_REQUESTS) {
            warmSampling = Promise.all([system.api.memoryAfterGc(), system.worker.memoryAfterGc()]).then(
              ([api, worker]) => {
                memory.api.warm = api;
                memory.worker.warm = worker;
              },
            );
          }
          if (done % MEMORY_SAMPLE_EVERY === 0)
            rssCurve.push({
              requests: done,
              api: system.api.memory()?.rss ?? NaN,
              worker: system.worker.memory()?.rss ?? NaN,
            });
          if (Date.now() - lastLog > 5_000) {
            lastLog = Date.now();
            log(
              `${done}/${REQUESTS} requests: ${JSON.stringify(observations.byClass)}; api RSS ${Math.round((system.api.memory()?.rss ?? 0) / 1048576)} MB`,
            );
          }
        }
      }),
    );
    if (failure !== undefined) throw failure;
    await warmSampling;
    const durationS = (Date.now() - began) / 1000;
    memory.api.end = system.api.memory()?.rss;
    memory.worker.end = system.worker.memory()?.rss;
    log(`requests done in ${durationS.toFixed(1)} s: ${JSON.stringify(observations.byClass)}`);

    // Settling: the worker flushes, delivers and builds what the api accepted.
    const mongo = await new MongoClient(mongoUrl).connect();
    closers.unshift(() => mongo.close());
    const redis = new Redis(redisUrl);
    closers.unshift(() => redis.quit());
    // The fuzzer's wrong dashboard passwords count as failed logins of 127.0.0.1 in the shared Redis;
    // forget them, so whatever runs next from this address is not turned away with 429.
    closers.unshift(async () => {
      const keys = await redis.keys('board-login-failures:*');
      if (keys.length) await redis.del(...keys);
    });
    const db = mongo.db(system.dbName);
    const buffer = new BufferedMongoIncrements(db.collection(COUNTERS_COLLECTION), redis, 1_000, {
      autoFlush: false,
    });
    closers.unshift(async () => buffer.destroy());
    const settleStart = new Date();
    const drain = await drainBuffer(buffer);
    log(`counters buffer ${drain.drained ? `drained in ${(drain.ms / 1000).toFixed(1)} s` : 'NOT drained'}`);
    const timers = await settleTimers(db, settleStart, observations.timerIds.size);
    const builds = await settleBuilds(system, [...observations.buildIds]);
    log(`timers: ${JSON.stringify(timers.byStatus)}; builds: ${JSON.stringify(builds.byStatus)}`);

    const stored = new Map<string, bigint | number>();
    for (const document of await db
      .collection<{ _id: unknown; value?: unknown }>(COUNTERS_COLLECTION)
      .find({}, { useBigInt64: true })
      .toArray()) {
      if (typeof document.value === 'bigint' || typeof document.value === 'number')
        stored.set(String(document._id), document.value);
    }
    const deadLetters = await buffer.deadLetterCount();
    const deadLettered = new Map<string, bigint>();
    for (const letter of await buffer.deadLetters(deadLetters)) {
      for (const [field, amount] of Object.entries(letter.fields)) {
        if (field.startsWith('i'))
          deadLettered.set(letter.documentId, (deadLettered.get(letter.documentId) ?? 0n) + BigInt(amount));
      }
    }
    const audit = ledger.audit({ values: stored, deadLettered });
    // GET answers MongoDB's value plus what is buffered; a dead-lettered amount is in neither.
    const expectedReadBack = new Map(
      [...ledger.expectedValues()].map(([key, value]) => [key, value - (deadLettered.get(key) ?? 0n)]),
    );
    const readback = await readBack(system, expectedReadBack);
    const deadLetterSamples = (await buffer.deadLetters(3)).map(
      (letter) => `${JSON.stringify(letter.documentId).slice(0, 80)}: ${letter.error.slice(0, 300)}`,
    );

    await sleep(2_000);
    memory.api.settled = await system.api.memoryAfterGc();
    memory.worker.settled = await system.worker.memoryAfterGc();
    // Liveness: /health/live where the api has it, else /health.
    const health =
      (await statusOf(`${system.origin}/health/live`)) === 404
        ? await statusOf(`${system.origin}/health`)
        : await statusOf(`${system.origin}/health/live`);
    const ready = await statusOf(`${system.origin}/health/ready`);
    const apiLog = system.api.log();
    for (const finding of observations.findings.values())
      finding.example.log = logLinesFor(apiLog, finding.example.requestId);
    const logErrors = { api: errorLines(apiLog), worker: errorLines(system.worker.log()) };

    const result: FuzzResult = {
      ok: false,
      seed: SEED,
      requests: REQUESTS,
      concurrency: CONCURRENCY,
      durationS,
      requestsPerSecond: REQUESTS / durationS,
      byClass: observations.byClass,
      byRoute: observations.byRoute,
      findings: [...observations.findings.values()].sort((a, b) => b.count - a.count),
      closedWithoutResponse: observations.closedWithoutResponse,
      rawSent: observations.rawSent,
      memory: {
        api: memoryFigures(system.api, memory.api),
        worker: memoryFigures(system.worker, memory.worker),
        boundBytes: RSS_GROWTH_BOUND,
        curve: rssCurve,
      },
      processes: {
        api: processState(system.api),
        worker: processState(system.worker),
        health,
        ready,
      },
      increments: {
        ...audit,
        readbackMismatches: readback.mismatches,
        readbackChecked: readback.checked,
        deadLetters,
        deadLetterSamples,
        drained: drain.drained,
        drainMs: drain.ms,
      },
      timers: { ...timers, webhooks: system.receiver.webhooks() },
      builds,
      logErrors,
      credentialsInLogs: credentialsInLogs(system),
      problems: [],
      logDir: runDir,
    };
    result.problems = problemsOf(result);
    result.ok = result.problems.length === 0;
    process.stdout.write(formatReport(result));
    if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 2));
    if (result.ok && !args['keep-logs']) rmSync(runDir, { recursive: true, force: true });
    // Its data has been read; the servers may be shared with other runs (npm test).
    await db.dropDatabase().catch(() => undefined);
    return result.ok ? 0 : 1;
  } finally {
    for (const close of closers) await close().catch(() => undefined);
  }
}

function problemsOf(result: FuzzResult): string[] {
  const problems: string[] = [];
  const fiveXx = result.findings.filter((finding) => finding.kind === '5xx');
  const unanswered = result.findings.filter((finding) => finding.kind === 'no response');
  if (fiveXx.length)
    problems.push(
      `${fiveXx.reduce((sum, finding) => sum + finding.count, 0)} answers were 5xx (${fiveXx.length} kinds)`,
    );
  if (unanswered.length)
    problems.push(
      `${unanswered.reduce((sum, finding) => sum + finding.count, 0)} requests got no answer (${unanswered.length} kinds)`,
    );
  if (!result.processes.api.startsWith('alive')) problems.push(`the api is not running: ${result.processes.api}`);
  if (!result.processes.worker.startsWith('alive'))
    problems.push(`the worker is not running: ${result.processes.worker}`);
  if (result.processes.health !== 200)
    problems.push(`GET /health/live answered ${result.processes.health ?? 'nothing'} at the end`);
  const growth = result.memory.api?.growth;
  if (growth === undefined || !(growth < result.memory.boundBytes))
    problems.push(
      `api RSS grew by ${growth === undefined ? '? (not measured)' : `${Math.round(growth / 1048576)} MB`} after warm-up, measured after full GCs (bound ${result.memory.boundBytes / 1048576} MB)`,
    );
  const inc = result.increments;
  if (!inc.drained) problems.push('the counters buffer did not drain into MongoDB');
  if (inc.mismatches.length)
    problems.push(`${inc.mismatches.length} counter keys hold something else than the accepted increments`);
  if (inc.ambiguousMismatches.length)
    problems.push(
      `${inc.ambiguousMismatches.length} counter keys hold a value no subset of the unanswered increments explains`,
    );
  if (inc.phantoms.length) problems.push(`${inc.phantoms.length} counter keys exist that no request named`);
  // Dead letters are accounted above (a counter whose MongoDB sum would pass Int64 is refused by
  // MongoDB and kept for replay); only a dead letter the audit cannot explain is a problem.
  if (inc.readbackMismatches.length)
    problems.push(
      `${inc.readbackMismatches.length} counters read back through GET /api/v1/increment/:key differ from the accepted sum`,
    );
  if (inc.wrongAnswers.length)
    problems.push(
      `${inc.wrongAnswers.length} accepted increment requests were answered with something else than what was sent`,
    );
  if (result.credentialsInLogs.length)
    problems.push(`the logs hold credentials the requests carried: ${result.credentialsInLogs.join(', ')}`);
  if (result.timers.stuck.length)
    problems.push(`${result.timers.stuck.length} timers were due and did not settle (delivered or failed)`);
  if (result.builds.stuck.length) problems.push(`${result.builds.stuck.length} royalties builds did not finish`);
  return problems;
}

function processState(app: FuzzApp): string {
  if (app.alive) return `alive (pid ${app.pid})`;
  return `exited (${app.exit?.signal ?? `code ${app.exit?.code}`}); see ${app.logFile}`;
}

async function statusOf(url: string): Promise<number | undefined> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(10_000) })).status;
  } catch {
    return undefined;
  }
}

/** Waits until nothing is buffered (live or draining) for the counters: the worker flushed it all. */
async function drainBuffer(buffer: BufferedMongoIncrements): Promise<{ drained: boolean; ms: number }> {
  const began = Date.now();
  while (Date.now() - began < DRAIN_TIMEOUT_MS) {
    if ((await buffer.stats()).bufferedFields === 0) return { drained: true, ms: Date.now() - began };
    await sleep(250);
  }
  return { drained: false, ms: Date.now() - began };
}

interface TimerRow {
  _id: unknown;
  status: string;
  dueAt: Date;
  runAt: Date;
  attempts: number;
  url: string;
  lastError?: string | null;
}

/** Waits until every timer due before `dueBy` is delivered, failed or cancelled; returns counts and the stuck ones. */
async function settleTimers(db: import('mongodb').Db, dueBy: Date, created: number) {
  const timers = db.collection<TimerRow>(TIMERS_COLLECTION);
  const unsettled = { status: { $in: ['pending', 'delivering'] }, dueAt: { $lte: dueBy } };
  const began = Date.now();
  while (Date.now() - began < SETTLE_TIMEOUT_MS && (await timers.countDocuments(unsettled)) > 0) await sleep(500);
  const byStatus: Record<string, number> = {};
  for (const { status } of await timers.find({}, { projection: { status: 1 } }).toArray())
    byStatus[status] = (byStatus[status] ?? 0) + 1;
  const stuck = (await timers.find(unsettled).limit(20).toArray()).map((timer) => ({
    id: String(timer._id),
    status: timer.status,
    dueAt: timer.dueAt,
    runAt: timer.runAt,
    attempts: timer.attempts,
    url: timer.url.slice(0, 120),
    lastError: timer.lastError,
  }));
  return { created, byStatus, stuck };
}

/** Polls GET /royalties/builds/:id until every accepted build finished (or the settle time is over). */
async function settleBuilds(system: FuzzSystem, buildIds: string[]) {
  const builds = new Map<string, { status: string; error?: string }>();
  const began = Date.now();
  let open = buildIds;
  while (open.length && Date.now() - began < SETTLE_TIMEOUT_MS) {
    for (const id of open) {
      try {
        const response = await fetch(`${system.origin}/royalties/builds/${id}`, {
          headers: { 'x-api-key': system.apiKey },
        });
        builds.set(
          id,
          response.ok
            ? ((await response.json()) as { status: string; error?: string })
            : { status: `HTTP ${response.status}` },
        );
      } catch (error) {
        builds.set(id, { status: `unreachable: ${(error as Error).message}` });
      }
    }
    open = open.filter((id) => !TERMINAL_BUILD.has(builds.get(id)?.status ?? ''));
    if (open.length) await sleep(1_000);
  }
  const byStatus: Record<string, number> = {};
  const failures: Record<string, number> = {};
  for (const { status, error } of builds.values()) {
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    // Ids, paths and numbers vary from build to build; the kind of failure does not.
    const reason = String(error ?? '')
      .replaceAll(system.inputRoot, '<input root>')
      .replace(/<input root>\/.*?: (E[A-Z_]+|not a regular file)/g, '<input root>/<name>: $1')
      .replace(/[0-9a-f]{24}/g, '<id>')
      .replace(/\d+/g, 'N')
      .slice(0, 120);
    if (status === 'failed') failures[reason] = (failures[reason] ?? 0) + 1;
  }
  return {
    created: buildIds.length,
    byStatus,
    failures,
    stuck: open.map((id) => `${id} (${builds.get(id)?.status})`),
  };
}

/** GET /api/v1/increment/:key for every key with accepted increments; the value's digits are compared as written. */
async function readBack(system: FuzzSystem, expected: Map<string, bigint>) {
  const mismatches: Array<{ key: string; expected: string; answered: string }> = [];
  let checked = 0;
  const client = new Client(system.origin);
  for (const [key, value] of expected) {
    try {
      // Sent by a client that keeps the path as given: fetch would resolve a `.` or `..` key (even as %2E) as a path step.
      const response = await client.request({
        method: 'GET',
        path: `/api/v1/increment/${percentEncoded(key)}`,
        headers: { 'x-api-key': system.apiKey },
      });
      const text = await response.body.text();
      checked += 1;
      const digits = /"value":(-?[0-9.e+]+)\}$/.exec(text)?.[1];
      if (response.statusCode !== 200 || digits !== String(value))
        mismatches.push({
          key,
          expected: String(value),
          answered:
            digits !== undefined
              ? `${response.statusCode} value ${digits}`
              : `${response.statusCode} ${text.slice(0, 200)}`,
        });
    } catch (error) {
      mismatches.push({
        key,
        expected: String(value),
        answered: `no answer: ${(error as Error).message}`,
      });
    }
  }
  await client.close();
  return { mismatches, checked };
}

/** Pino lines at level error (50) or fatal (60), counted by message. */
function errorLines(log: string): { count: number; byMessage: Record<string, number> } {
  const byMessage: Record<string, number> = {};
  let count = 0;
  for (const line of log.split('\n')) {
    if (!/"level":(5|6)0/.test(line)) continue;
    count += 1;
    let message: string;
    try {
      const entry = JSON.parse(line) as {
        msg?: string;
        context?: string;
        err?: { message?: string };
      };
      message = [entry.context, entry.err?.message ?? entry.msg].filter(Boolean).join(': ').slice(0, 200);
    } catch {
      message = line.slice(0, 200);
    }
    byMessage[message] = (byMessage[message] ?? 0) + 1;
  }
  return { count, byMessage };
}

/** Credentials the run sent that the processes wrote into their logs. */
function credentialsInLogs(system: FuzzSystem): string[] {
  const logs = `${system.api.log()}\n${system.worker.log()}`;
  const secrets = {
    'the API key (x-api-key)': system.apiKey,
    'the dashboard password (authorization: Basic)': system.boardAuthorization.slice('Basic '.length),
  };
  return Object.entries(secrets)
    .filter(([, secret]) => logs.includes(secret))
    .map(([name]) => name);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `[fuzz] the run failed: ${error instanceof Error ? `${error.stack}${error.cause instanceof Error ? `\ncaused by: ${error.cause.stack}` : ''}` : error}\n`,
    );
    process.exit(2);
  },
);
