/**
 * One producer or worker process of a chaos run: a TypeScript file forked with ts-node (transpile only,
 * tsconfig paths) and an IPC channel, its output appended to a log file.
 */
import { ChildProcess, fork } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildMessage, ParentMessage } from './topology';

const TS_NODE_ARGS = ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register'];

export class ChaosChild {
  private process?: ChildProcess;
  private readyNow = false;
  private exited?: Promise<number | null>;
  /** Starts of this slot so far (the first one included). */
  starts = 0;

  constructor(
    readonly name: string,
    private readonly script: string,
    private readonly config: object,
    private readonly logFile: string,
    private readonly onExit: (child: ChaosChild, code: number | null, signal: NodeJS.Signals | null) => void = () =>
      undefined,
  ) {}

  /** Running and past its `ready` message. */
  get ready(): boolean {
    return this.readyNow;
  }

  get alive(): boolean {
    return this.process !== undefined;
  }

  /** Forks the process; resolves once it says `ready` (rejects if it exits first). */
  start(): Promise<void> {
    if (this.process) throw new Error(`${this.name} is already running`);
    const log = openSync(this.logFile, 'a');
    const child = fork(join(__dirname, this.script), [JSON.stringify(this.config)], {
      cwd: join(__dirname, '..', '..'),
      execArgv: TS_NODE_ARGS,
      stdio: ['ignore', log, log, 'ipc'],
    });
    closeSync(log);
    this.process = child;
    this.readyNow = false;
    this.starts += 1;
    this.exited = new Promise((resolve) =>
      // 'close', not 'exit': by then every IPC message the child sent (its ledger) has been delivered.
      child.once('close', (code, signal) => {
        if (this.process === child) {
          this.process = undefined;
          this.readyNow = false;
        }
        resolve(code);
        this.onExit(this, code, signal);
      }),
    );
    return new Promise((resolve, reject) => {
      child.on('message', (message: ChildMessage) => {
        if (message.type !== 'ready') return;
        this.readyNow = true;
        resolve();
      });
      void this.exited!.then((code) =>
        reject(new Error(`${this.name} exited (${code}) before it was ready; see ${this.logFile}`)),
      );
    });
  }

  /** SIGKILL, as a crash: no cleanup of any kind runs in the child. Resolves once it is gone. */
  async kill(): Promise<void> {
    const exited = this.exited;
    if (!this.process) return;
    this.process.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM, then SIGKILL if it has not left within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.process;
    if (!child) return;
    const exited = this.exited!;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Sends `message` and resolves with the first reply of type `replyType`. */
  request<T extends ChildMessage['type']>(
    message: ParentMessage,
    replyType: T,
    timeoutMs: number,
  ): Promise<Extract<ChildMessage, { type: T }>> {
    const child = this.process;
    if (!child) return Promise.reject(new Error(`${this.name} is not running`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name} did not answer '${message.type}' within ${timeoutMs} ms`)),
        timeoutMs,
      );
      child.on('message', (reply: ChildMessage) => {
        if (reply.type !== replyType) return;
        clearTimeout(timer);
        resolve(reply as Extract<ChildMessage, { type: T }>);
      });
      void this.exited!.then(() => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited before it answered '${message.type}'; see ${this.logFile}`));
      });
      child.send(message);
    });
  }
}
