import { ConflictException, Inject, Injectable, Logger, NotFoundException } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import { ZodValidationException } from 'nestjs-zod';
import { z } from 'zod';
import { forbiddenTargetReason } from './delivery/webhook/target-guard';
import { DueIndex } from './storage/due-index/due-index';
import { MicroBatcher } from './storage/micro-batcher';
import { TimersRepository } from './storage/timers.repository';
import {
  parseTimerId,
  shownStatus,
  storedIdempotencyKey,
  TenantId,
  TimerDocument,
  TimerStatus,
  TimerView,
  toTimerView,
} from './timer';
import { TIMERS_CONFIG, TimersConfig } from './timers.config';

/** A timer request after its shape was validated (see `createTimerSchema`). */
export interface CreateTimerInput {
  hours: number;
  minutes: number;
  seconds: number;
  url: string;
}

export interface TimerPage {
  items: TimerView[];
  next_cursor: string | null;
}

/**
 * Creating, reading, cancelling and retrying timers. A timer is written to MongoDB first and then
 * indexed in Redis; if the index write fails the timer still exists and the reconciler indexes it. The
 * index write leaves alone a timer cancelled (or indexed by the reconciler and claimed) in between.
 * A timer due within two reconciler periods is also staged (url, attempts) so its delivery needs no
 * MongoDB read; later ones are staged by the reconciler as they come near.
 *
 * Every timer belongs to a tenant (`TenantId`: a digest of the API key that created it, or the default
 * tenant): reads, lists, cancels, retries and Idempotency-Keys see only the caller's tenant's timers, and
 * another tenant's timer is "not found". The schedule in Redis and delivery do not need to know tenants.
 */
@Injectable()
export class TimersService {
  private readonly logger = new Logger(TimersService.name);
  /** Timers created by concurrent `create` calls are indexed with one Redis call. */
  private readonly createdIndex = new MicroBatcher(
    (timers: TimerDocument[]) => this.index(timers, 'created').then(() => timers.map(() => undefined)),
    1_000,
    0,
  );

  constructor(
    private readonly timers: TimersRepository,
    private readonly dueIndex: DueIndex,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
  ) {}

  async create(
    input: CreateTimerInput,
    options: { tenant?: TenantId; idempotencyKey?: string } = {},
  ): Promise<{ id: string; created: boolean }> {
    const timer = this.newTimer(input, options.tenant, Date.now());
    if (options.idempotencyKey !== undefined)
      timer.idempotencyKey = storedIdempotencyKey(options.tenant, options.idempotencyKey);
    const { timer: stored, inserted } = await this.timers.insertOnce(timer);
    // A replayed key whose first request did not reach Redis is indexed by the reconciler.
    if (inserted) await this.createdIndex.submit(stored);
    return { id: stored._id.toHexString(), created: inserted };
  }

  /** Creates many timers with one MongoDB round trip and one Redis round trip (bulk loads, benchmark). */
  async createMany(inputs: CreateTimerInput[], tenant?: TenantId): Promise<string[]> {
    const now = Date.now();
    const timers = inputs.map((input) => this.newTimer(input, tenant, now));
    await this.timers.insertMany(timers);
    await this.index(timers, 'created');
    return timers.map((timer) => timer._id.toHexString());
  }

  async get(id: string, tenant?: TenantId): Promise<TimerView> {
    return toTimerView(await this.findOrThrow(id, tenant));
  }

  async list(options: { tenant?: TenantId; status?: TimerStatus; cursor?: string; limit: number }): Promise<TimerPage> {
    const after = options.cursor ? parseTimerId(options.cursor) : undefined;
    const page = await this.timers.list({
      tenant: options.tenant,
      status: options.status,
      after,
      limit: options.limit + 1,
    });
    const items = page.slice(0, options.limit).map((timer) => toTimerView(timer));
    return { items, next_cursor: page.length > options.limit ? items[items.length - 1].id : null };
  }

  /**
   * Cancels a pending timer that is not due yet. One that is due or being delivered (or finished) cannot
   * be cancelled: 409. The timer leaves the Redis schedule first, in one step with respect to the
   * schedulers' claims (so a cancelled timer never fires), then MongoDB records it; if Redis is
   * unreachable the cancel fails rather than report a timer cancelled that may still fire.
   */
  async cancel(id: string, tenant?: TenantId): Promise<TimerView> {
    const timer = await this.findOrThrow(id, tenant);
    const now = new Date();
    if (shownStatus(timer, now.getTime()) !== 'pending') throw this.notCancellable(timer, now);
    // Its run time finds it in the timing wheel if it is still there (far off).
    if ((await this.dueIndex.cancel(timer._id.toHexString(), now.getTime(), timer.runAt.getTime())) === 'delivering')
      throw new ConflictException(`timer ${id} is being delivered; only a pending timer can be cancelled`);
    const cancelled = await this.timers.cancelPending(timer._id, tenant, now);
    if (cancelled) return toTimerView(cancelled);
    throw this.notCancellable(await this.findOrThrow(id, tenant), now);
  }

  private notCancellable(timer: TimerDocument, now: Date): ConflictException {
    return new ConflictException(
      `timer ${timer._id.toHexString()} is ${shownStatus(timer, now.getTime())}; only a pending timer can be cancelled`,
    );
  }

  /** Sends a failed (dead-lettered) timer again now, with a fresh attempt budget. */
  async retry(id: string, tenant?: TenantId): Promise<TimerView> {
    const timerId = this.idOrThrow(id);
    const retried = await this.timers.retryFailed(timerId, tenant, new Date());
    if (retried) {
      await this.index([retried], 'retried');
      return toTimerView(retried);
    }
    const timer = await this.findOrThrow(id, tenant);
    throw new ConflictException(`timer ${id} is ${timer.status}; only a failed timer can be retried`);
  }

  /** Timers per status, across every tenant (an operator's view; API callers see their own tenant's). */
  countByStatus(): Promise<Record<TimerStatus, number>> {
    return this.timers.countByStatus();
  }

  /** Sends up to `limit` failed timers of every tenant again now, oldest first (an operator's command); returns their ids. */
  async retryAllFailed(limit: number): Promise<string[]> {
    const now = new Date();
    const retried: TimerDocument[] = [];
    for (const { _id, tenant } of await this.timers.failed(limit)) {
      const timer = await this.timers.retryFailed(_id, tenant, now);
      if (timer) retried.push(timer);
    }
    if (retried.length) await this.index(retried, 'retried');
    return retried.map((timer) => timer._id.toHexString());
  }

  private newTimer(input: CreateTimerInput, tenant: TenantId, now: number): TimerDocument {
    this.checkLimits(input);
    const delaySeconds = input.hours * 3600 + input.minutes * 60 + input.seconds;
    const dueAt = new Date(now + delaySeconds * 1000);
    return {
      _id: new ObjectId(),
      // The default tenant stores no field, as every timer did before tenants existed.
      ...(tenant === undefined ? {} : { tenant }),
      url: input.url,
      dueAt,
      runAt: dueAt,
      status: 'pending',
      attempts: 0,
      // No lastError or updatedAt until a change: each stored field costs every insert (see docs/timers.md).
      createdAt: new Date(now),
    };
  }

  /** The configured limits, reported in the same 400 format as the request validation. */
  private checkLimits(input: CreateTimerInput): void {
    const issues: z.core.$ZodIssue[] = [];
    const total = input.hours * 3600 + input.minutes * 60 + input.seconds;
    if (total > this.config.TIMERS_MAX_DELAY_SECONDS) {
      for (const field of ['hours', 'minutes', 'seconds'] as const) {
        if (input[field] > 0) {
          issues.push({
            code: 'custom',
            path: [field],
            input: input[field],
            message: `hours, minutes and seconds together must be at most ${this.config.TIMERS_MAX_DELAY_SECONDS} seconds`,
          });
        }
      }
    }
    if (input.url.length > this.config.TIMERS_MAX_URL_LENGTH) {
      issues.push({
        code: 'custom',
        path: ['url'],
        input: input.url,
        message: `must be at most ${this.config.TIMERS_MAX_URL_LENGTH} characters`,
      });
    } else if (!this.config.TIMERS_ALLOW_PRIVATE_TARGETS) {
      const refusal = forbiddenTargetReason(new URL(input.url));
      if (refusal) issues.push({ code: 'custom', path: ['url'], input: input.url, message: refusal });
    }
    if (issues.length) throw new ZodValidationException(new z.ZodError(issues));
  }

  /**
   * Indexes timers MongoDB just recorded: new ones (`created`: unless a cancel or a worker got to them
   * first, since this write may come late) or failed ones sent again (`retried`).
   */
  private async index(timers: TimerDocument[], why: 'created' | 'retried'): Promise<void> {
    const stageUntil = Date.now() + 2 * this.config.TIMERS_RECONCILE_INTERVAL_MS;
    const due = timers.map((timer) => ({
      id: timer._id.toHexString(),
      runAt: timer.runAt.getTime(),
      staged: timer.runAt.getTime() <= stageUntil ? { url: timer.url, attempts: timer.attempts } : undefined,
    }));
    try {
      if (why === 'created') await this.dueIndex.schedule(due);
      else await this.dueIndex.reschedule(due);
    } catch (error) {
      this.logger.warn(
        `timers stored but not indexed in Redis (${(error as Error).message}); the reconciler will add them`,
      );
    }
  }

  private idOrThrow(id: string): ObjectId {
    const timerId = parseTimerId(id);
    if (!timerId) throw new NotFoundException(`timer ${id} not found`);
    return timerId;
  }

  private async findOrThrow(id: string, tenant: TenantId): Promise<TimerDocument> {
    const timer = await this.timers.findById(this.idOrThrow(id), tenant);
    if (!timer) throw new NotFoundException(`timer ${id} not found`);
    return timer;
  }
}
