/**
 * The system a fuzz run attacks, as production runs it: the api's and the worker's `main.ts` as their
 * own processes (ts-node, transpile only), on the Redis and MongoDB-wire server of REDIS_URL / MONGO_URL,
 * in a database, queue names and key prefixes of their own. Webhooks and URL inputs may reach the local
 * receiver only (private targets are allowed for 127.0.0.1, nothing else is reachable).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MessageEvent, WebSocket } from 'undici';
import { freePort, sleep } from '@bufferq/testing';
import { LocalReceiver } from './local-receiver';
import { FIXTURE_NAMES, writeInputRoot } from './royalties-inputs';

const ROOT = join(__dirname, '..', '..');
const BOOT_TIMEOUT_MS = 120_000;

export interface FuzzSystemSettings {
  seed: number;
  redisUrl: string;
  mongoUrl: string;
  runDir: string;
}

export interface ProcessMemory {
  /** Resident set size and its peak so far (VmRSS, VmHWM), in bytes. */
  rss: number;
  peakRss: number;
}

/** The process's memory right after a full garbage collection it was told to run (through its inspector). */
export interface MemoryAfterGc {
  rss: number;
  heapUsed: number;
  external: number;
}

export class FuzzApp {
  private child?: ChildProcess;
  exit?: { code: number | null; signal: NodeJS.Signals | null };

  constructor(
    readonly name: 'api' | 'worker',
    readonly logFile: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return this.child !== undefined && this.exit === undefined;
  }

  start(env: NodeJS.ProcessEnv): void {
    const log = openSync(this.logFile, 'a');
    // The inspector (loopback, a port of its own) lets the run ask for a full GC before it reads memory.
    this.child = spawn(
      process.execPath,
      [
        '--inspect=127.0.0.1:0',
        '-r',
        'ts-node/register/transpile-only',
        '-r',
        'tsconfig-paths/register',
        join(ROOT, 'apps', this.name, 'src', 'main.ts'),
      ],
      {
        cwd: ROOT,
        env: { ...env, TS_NODE_PROJECT: join(ROOT, 'tsconfig.json') },
        stdio: ['ignore', log, log],
      },
    );
    closeSync(log);
    this.child.once('exit', (code, signal) => (this.exit = { code, signal }));
  }

  /** From /proc: the process itself (node runs main.ts in-process, no wrapper). */
  memory(): ProcessMemory | undefined {
    if (!this.alive || !this.child?.pid) return undefined;
    try {
      const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
      return { rss: kib('VmRSS'), peakRss: kib('VmHWM') };
    } catch {
      return undefined;
    }
  }

  /**
   * Runs a full garbage collection in the process and reads `process.memoryUsage()` there, so growth
   * is measured on what is still referenced, not on garbage V8 had no reason to collect yet.
   */
  async memoryAfterGc(): Promise<MemoryAfterGc | undefined> {
    const url = /Debugger listening on (ws:\/\/\S+)/.exec(this.log())?.[1];
    if (!url || !this.alive) return undefined;
    const socket = new WebSocket(url);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.addEventListener('open', () => resolve(), { once: true });
        socket.addEventListener('error', () => reject(new Error(`cannot reach the ${this.name}'s inspector`)), {
          once: true,
        });
      });
      const call = (id: number, method: string, params: object = {}) =>
        new Promise<{ result?: { result?: { value?: unknown } } }>((resolve, reject) => {
          const onMessage = (event: MessageEvent) => {
            const message = JSON.parse(String(event.data)) as {
              id?: number;
              result?: { result?: { value?: unknown } };
            };
            if (message.id !== id) return;
            socket.removeEventListener('message', onMessage);
            resolve(message);
          };
          socket.addEventListener('message', onMessage);
          socket.send(JSON.stringify({ id, method, params }));
          setTimeout(() => reject(new Error(`${method} took over 30 s`)), 30_000).unref();
        });
      await call(1, 'HeapProfiler.collectGarbage');
      const reply = await call(2, 'Runtime.evaluate', {
        expression: 'JSON.stringify(process.memoryUsage())',
        returnByValue: true,
      });
      const usage = JSON.parse(String(reply.result?.result?.value)) as {
        rss: number;
        heapUsed: number;
        external: number;
      };
      return { rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external };
    } catch {
      return undefined;
    } finally {
      socket.close();
    }
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  async stop(graceMs = 15_000): Promise<void> {
    const child = this.child;
    if (!child || this.exit) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

export class FuzzSystem {
  readonly api: FuzzApp;
  readonly worker: FuzzApp;
  readonly receiver: LocalReceiver;
  readonly dbName: string;
  readonly apiKey: string;
  readonly boardUser = 'admin';
  readonly boardPassword = 'admin';
  origin = '';
  /** ROYALTIES_INPUT_ROOT of the run: the inputs that builds may name as paths. */
  readonly inputRoot: string;
  env: NodeJS.ProcessEnv = {};

  constructor(private readonly settings: FuzzSystemSettings) {
    const runId = `${settings.seed}_${Date.now().toString(36)}`;
    this.dbName = `fuzz_${runId}`;
    this.apiKey = `fuzz-key-${runId}`;
    this.api = new FuzzApp('api', join(settings.runDir, 'api.log'));
    this.worker = new FuzzApp('worker', join(settings.runDir, 'worker.log'));
    this.receiver = new LocalReceiver(settings.seed);
    this.inputRoot = join(settings.runDir, 'royalties-inputs');
  }

  get boardAuthorization(): string {
    return `Basic ${Buffer.from(`${this.boardUser}:${this.boardPassword}`).toString('base64')}`;
  }

  /** The receiver, then the worker, then the api; resolves once the api answers /health. */
  async start(): Promise<void> {
    const { settings } = this;
    await this.receiver.start();
    const inputRoot = this.inputRoot;
    mkdirSync(inputRoot, { recursive: true });
    writeInputRoot(inputRoot, settings.seed);
    const port = await freePort();
    this.origin = `http://127.0.0.1:${port}`;
    const prefix = this.dbName.replace(/_/g, '-');
    this.env = {
      ...process.env,
      NODE_ENV: 'development',
      REDIS_URL: settings.redisUrl,
      MONGO_URL: settings.mongoUrl,
      MONGO_DB: this.dbName,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      WORKER_ROLES: 'all',
      API_KEYS: this.apiKey,
      // The limiter runs on every request (its Redis counts included) without refusing the run's own traffic.
      RATE_LIMIT_MAX: '10000000',
      BOARD_USER: this.boardUser,
      BOARD_PASSWORD: this.boardPassword,
      // Wrong passwords are sent all along; the login limit would then refuse the right one too (429) and hide the board's routes.
      BOARD_LOGIN_MAX_FAILURES: '10000000',
      COUNTERS_FLUSH_INTERVAL_MS: '500',
      TIMERS_ALLOW_PRIVATE_TARGETS: 'true',
      TIMERS_REDIS_PREFIX: prefix,
      TIMERS_MAX_ATTEMPTS: '2',
      TIMERS_BACKOFF_BASE_MS: '200',
      TIMERS_BACKOFF_MAX_MS: '1000',
      TIMERS_DELIVERY_TIMEOUT_MS: '3000',
      TIMERS_RECONCILE_INTERVAL_MS: '5000',
      ROYALTIES_QUEUE: `${prefix}-royalties`,
      ROYALTIES_INPUT_ROOT: inputRoot,
      // A build that names no inputs reads the fixtures.
      ROYALTIES_USERS_CSV: join(inputRoot, FIXTURE_NAMES.usersCsv),
      ROYALTIES_STREAMS_CSV: join(inputRoot, FIXTURE_NAMES.streamsCsv),
      ROYALTIES_TRACKS: join(inputRoot, FIXTURE_NAMES.tracks),
      ROYALTIES_ALLOW_PRIVATE_INPUT_HOSTS: '127.0.0.1',
    };
    this.worker.start(this.env);
    this.api.start(this.env);
    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    for (;;) {
      for (const app of [this.api, this.worker]) {
        if (!app.alive)
          throw new Error(
            `the ${app.name} exited (${JSON.stringify(app.exit)}) while starting:\n${app.log().slice(-3_000)}`,
          );
      }
      try {
        if ((await fetch(`${this.origin}/health`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline)
        throw new Error(
          `the api did not answer /health within ${BOOT_TIMEOUT_MS / 1000} s:\n${this.api.log().slice(-3_000)}`,
        );
      await sleep(250);
    }
  }

  /** The api's OpenAPI document (served at /docs-json). */
  async openApiDocument(): Promise<unknown> {
    const response = await fetch(`${this.origin}/docs-json`, {
      headers: { 'x-api-key': this.apiKey },
    });
    if (!response.ok) throw new Error(`GET /docs-json answered ${response.status}`);
    return response.json();
  }

  async stop(): Promise<void> {
    await Promise.all([this.api.stop(), this.worker.stop()]);
    await this.receiver.stop();
  }
}
