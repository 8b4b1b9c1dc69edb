/**
 * What a fuzz run found, as JSON (`--json`) and as the markdown the run prints: requests by status
 * class and route, every 5xx and unanswered well-formed request with the request that caused it and
 * the api's log lines for it, memory, liveness, and the accounting of increments, timers and builds.
 */
import type { FuzzResponse } from './http-sender';
import type { IncrementAudit } from './increment-ledger';
import type { FuzzRequest } from './request-generator';

export type StatusClass = '2xx' | '3xx' | '4xx' | '5xx' | 'no response';
export const STATUS_CLASSES: StatusClass[] = ['2xx', '3xx', '4xx', '5xx', 'no response'];

export function statusClass(response: FuzzResponse): StatusClass {
  if (response.status === undefined) return 'no response';
  return `${Math.floor(response.status / 100)}xx` as StatusClass;
}

/** One kind of failure (route, status, message) with how often it happened and its first occurrence. */
export interface Finding {
  kind: '5xx' | 'no response';
  label: string;
  status?: number;
  message: string;
  count: number;
  example: {
    index: number;
    request: string;
    response: string;
    requestId?: string;
    log: string[];
  };
}

export interface MemoryFigures {
  bootRss: number;
  /** RSS and V8 heap in use right after a forced full GC, after the warm-up and after settling. */
  warmRss: number;
  warmHeap: number;
  /** RSS as the requests ended (no GC forced). */
  endRss: number;
  settledRss: number;
  settledHeap: number;
  peakRss: number;
  /** settled - warm: what the run left behind after its warm-up. */
  growth: number;
  heapGrowth: number;
}

export interface FuzzResult {
  ok: boolean;
  seed: number;
  requests: number;
  concurrency: number;
  durationS: number;
  requestsPerSecond: number;
  byClass: Record<StatusClass, number>;
  byRoute: Record<string, Record<StatusClass, number>>;
  findings: Finding[];
  /** Malformed messages the server closed without answering (allowed), and raw sends overall. */
  closedWithoutResponse: number;
  rawSent: number;
  memory: {
    api?: MemoryFigures;
    worker?: MemoryFigures;
    boundBytes: number;
    curve: Array<{ requests: number; api: number; worker: number }>;
  };
  processes: { api: string; worker: string; health?: number; ready?: number };
  increments: IncrementAudit & {
    readbackMismatches: Array<{ key: string; expected: string; answered: string }>;
    readbackChecked: number;
    deadLetters: number;
    deadLetterSamples: string[];
    drained: boolean;
    drainMs: number;
  };
  timers: {
    created: number;
    byStatus: Record<string, number>;
    stuck: Array<Record<string, unknown>>;
    webhooks: { requests: number; timers: number; repeated: number };
  };
  builds: {
    created: number;
    byStatus: Record<string, number>;
    /** Why builds failed, by message (ids and numbers masked). */
    failures: Record<string, number>;
    stuck: string[];
  };
  /** Error and fatal lines in each process's log, by message. */
  logErrors: Record<'api' | 'worker', { count: number; byMessage: Record<string, number> }>;
  /** Credentials the requests carried that a log holds in clear. */
  credentialsInLogs: string[];
  problems: string[];
  logDir: string;
}

/** The request as a reader can send it again: method, target, headers and the body's text (escaped), or the raw bytes. */
export function describeRequest(request: FuzzRequest): string {
  const clip = (text: string, max: number) =>
    text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
  if (request.raw)
    return `raw bytes (${request.raw.length}): ${clip(JSON.stringify(request.raw.toString('latin1')), 1_200)}`;
  const headers = Object.entries(request.headers)
    .filter(([name]) => name !== 'x-api-key' || request.headers[name].startsWith('fuzz-key-') === false)
    .map(([name, value]) => `${name}: ${clip(JSON.stringify(value), 200)}`)
    .join('; ');
  const body = request.body
    ? ` body (${request.body.length} bytes): ${clip(JSON.stringify(request.body.toString('utf8')), 1_200)}`
    : '';
  return `${request.method} ${clip(request.target, 600)} [${headers}${request.headers['x-api-key']?.startsWith('fuzz-key-') ? '; x-api-key: <valid>' : ''}]${body}`;
}

/** The api's log lines that carry a request's id, with the error's stack when pino logged one. */
export function logLinesFor(log: string, requestId: string | undefined): string[] {
  if (!requestId) return [];
  const lines: string[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes(requestId)) continue;
    try {
      const entry = JSON.parse(line) as {
        msg?: string;
        context?: string;
        err?: { stack?: string };
        stack?: string;
      };
      lines.push([entry.context, entry.msg, entry.err?.stack ?? entry.stack].filter(Boolean).join(' | '));
    } catch {
      lines.push(line);
    }
    if (lines.length >= 5) break;
  }
  return lines;
}

/** A key as the report shows it: the start of it, escaped, and its length in UTF-8 bytes when long. */
function shownKey(key: string): string {
  return key.length <= 40
    ? JSON.stringify(key)
    : `${JSON.stringify(key.slice(0, 40))}… (${Buffer.byteLength(key)} bytes)`;
}

const mb = (bytes: number | undefined) =>
  bytes === undefined || Number.isNaN(bytes) ? '-' : `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const signed = (bytes: number) => `${bytes >= 0 ? '+' : ''}${(bytes / 1024 / 1024).toFixed(0)} MB`;

export function formatReport(result: FuzzResult): string {
  const lines: string[] = [];
  const n = (value: number) => value.toLocaleString('en-US');
  lines.push(
    `## Fuzz run: seed ${result.seed}, ${n(result.requests)} requests, concurrency ${result.concurrency}: ${result.ok ? 'PASSED' : 'FAILED'}`,
  );
  lines.push('');
  lines.push(
    `${result.durationS.toFixed(1)} s of requests, ${n(Math.round(result.requestsPerSecond))} requests/s; ${n(result.rawSent)} sent as raw bytes (malformed HTTP); ${n(result.closedWithoutResponse)} malformed messages or bodies over the limit were refused by closing the connection (allowed).`,
  );
  lines.push('');
  lines.push(`| ${STATUS_CLASSES.join(' | ')} |`);
  lines.push(`|${STATUS_CLASSES.map(() => '---:').join('|')}|`);
  lines.push(`| ${STATUS_CLASSES.map((name) => n(result.byClass[name])).join(' | ')} |`);
  lines.push('');
  lines.push(`| route | ${STATUS_CLASSES.join(' | ')} |`);
  lines.push(`|---|${STATUS_CLASSES.map(() => '---:').join('|')}|`);
  for (const [label, counts] of Object.entries(result.byRoute).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(
      `| ${label.replace(/\|/g, '\\|')} | ${STATUS_CLASSES.map((name) => (counts[name] ? n(counts[name]) : '')).join(' | ')} |`,
    );
  }
  lines.push('');
  lines.push(`### Findings (${result.findings.length})`);
  for (const finding of result.findings) {
    lines.push('');
    lines.push(
      `- **${finding.kind === '5xx' ? finding.status : 'no response'} on ${finding.label}** x${finding.count}: ${finding.message}`,
    );
    lines.push(`  - request #${finding.example.index}: ${finding.example.request}`);
    lines.push(`  - response: ${finding.example.response}`);
    for (const line of finding.example.log) lines.push(`  - api log: ${line.split('\n').slice(0, 8).join(' ⏎ ')}`);
    if (!finding.example.log.length) lines.push('  - api log: no line carries its request id');
  }
  lines.push('');
  lines.push('### Processes and memory');
  lines.push('');
  lines.push(
    `api: ${result.processes.api}; worker: ${result.processes.worker}; GET /health/live ${result.processes.health ?? '-'}, /health/ready ${result.processes.ready ?? '-'}`,
  );
  lines.push('');
  lines.push(
    '| process | RSS after boot | after warm-up (GC) | as the requests ended | after settling (GC) | peak RSS | RSS growth after warm-up | V8 heap after warm-up / settling (GC) |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const name of ['api', 'worker'] as const) {
    const memory = result.memory[name];
    if (memory)
      lines.push(
        `| ${name} | ${mb(memory.bootRss)} | ${mb(memory.warmRss)} | ${mb(memory.endRss)} | ${mb(memory.settledRss)} | ${mb(memory.peakRss)} | ${signed(memory.growth)} | ${mb(memory.warmHeap)} / ${mb(memory.settledHeap)} (${signed(memory.heapGrowth)}) |`,
      );
    else lines.push(`| ${name} | not measured (its inspector did not answer) |`);
  }
  lines.push('');
  lines.push(
    `RSS every ${result.memory.curve[1]?.requests ?? '-'} requests (api / worker): ${result.memory.curve.map((sample) => `${mb(sample.api)} / ${mb(sample.worker)}`).join(', ')}`,
  );
  lines.push('');
  const inc = result.increments;
  lines.push('### Accounting');
  lines.push('');
  lines.push(
    `Increments: ${n(inc.accepted)} requests accepted (${n(inc.acceptedIncrements)} increments, sum ${inc.acceptedSum}), ${n(inc.rejected)} rejected, ${n(inc.ambiguous)} without a clear answer; ` +
      `${n(inc.keys)} keys, ${n(inc.exactKeys)} checked exactly; buffer ${inc.drained ? `drained in ${(inc.drainMs / 1000).toFixed(1)} s` : 'NOT drained'}; ` +
      `MongoDB differs on ${inc.mismatches.length} keys (${inc.ambiguousMismatches.length} outside the ambiguous range), ${inc.phantoms.length} phantom keys, ${inc.deadLetters} dead letters; ` +
      `GET /api/v1/increment/:key read back ${n(inc.readbackChecked)} keys, ${inc.readbackMismatches.length} differ; ${inc.wrongAnswers.length} accepted requests answered with something else than what was sent.`,
  );
  if (inc.mismatches.length) {
    const past = inc.mismatches.filter((mismatch) => mismatch.pastSafeIntegers).length;
    lines.push(
      `- of the ${inc.mismatches.length} keys that differ, ${past} took increments large enough for a running sum to pass 2^53; ${inc.overflowRefusedMixedBatches} batches naming several keys were refused because one increment would overflow 64 bits`,
    );
  }
  for (const mismatch of inc.mismatches.slice(0, 10))
    lines.push(
      `- key ${shownKey(mismatch.key)}: accepted sum ${mismatch.expected}, MongoDB ${mismatch.stored} (${mismatch.acceptedPairs} increments accepted, ${mismatch.rejectedPairs} refused)`,
    );
  for (const mismatch of inc.ambiguousMismatches.slice(0, 5))
    lines.push(
      `- key ${shownKey(mismatch.key)}: MongoDB ${mismatch.stored}, outside [${mismatch.low}, ${mismatch.high}]`,
    );
  for (const phantom of inc.phantoms.slice(0, 5))
    lines.push(`- phantom key ${shownKey(phantom.key)} = ${phantom.stored}`);
  for (const mismatch of inc.readbackMismatches.slice(0, 5))
    lines.push(
      `- GET of ${shownKey(mismatch.key)} answered ${mismatch.answered.slice(0, 160)}, expected ${mismatch.expected}`,
    );
  for (const letter of inc.deadLetterSamples.slice(0, 3)) lines.push(`- dead letter: ${letter}`);
  for (const wrong of inc.wrongAnswers.slice(0, 5))
    lines.push(`- request #${wrong.index} sent ${JSON.stringify(wrong.sent).slice(0, 200)}, answer ${wrong.answer}`);
  lines.push('');
  const timers = result.timers;
  lines.push(
    `Timers: ${n(timers.created)} created, by status ${JSON.stringify(timers.byStatus)}, ${timers.stuck.length} due but not settled; receiver got ${n(timers.webhooks.requests)} webhooks for ${n(timers.webhooks.timers)} timers (${timers.webhooks.repeated} more than once).`,
  );
  for (const stuck of timers.stuck.slice(0, 5)) lines.push(`- stuck timer ${JSON.stringify(stuck)}`);
  lines.push(
    `Royalties builds: ${n(result.builds.created)} accepted, by status ${JSON.stringify(result.builds.byStatus)}, ${result.builds.stuck.length} not finished.`,
  );
  for (const [reason, count] of Object.entries(result.builds.failures).sort(([, a], [, b]) => b - a))
    lines.push(`- ${count} builds failed: ${reason}`);
  for (const name of ['api', 'worker'] as const) {
    const errors = result.logErrors[name];
    const top = Object.entries(errors.byMessage)
      .sort(([, a], [, b]) => b - a)
      .slice(0, 4)
      .map(([message, count]) => `${count} x ${message}`);
    lines.push(`${name} log: ${errors.count} error lines${top.length ? ` (${top.join('; ')})` : ''}.`);
  }
  if (result.credentialsInLogs.length)
    lines.push(`Credentials written into the logs: ${result.credentialsInLogs.join(', ')}.`);
  lines.push('');
  if (result.problems.length) {
    lines.push('### Problems');
    for (const problem of result.problems) lines.push(`- ${problem}`);
    lines.push('');
  }
  lines.push(`Logs: ${result.logDir}${result.ok ? ' (removed: the run passed)' : ''}`);
  return `${lines.join('\n')}\n`;
}
