import { ObjectId } from 'mongodb';

export const TIMER_STATUSES = ['pending', 'delivering', 'delivered', 'failed', 'cancelled'] as const;
export type TimerStatus = (typeof TIMER_STATUSES)[number];

/**
 * Who a timer belongs to: the tenant id the api derived from the caller's API key (a digest of the key,
 * never the key), or `undefined` for the default tenant (an api without API keys, and library callers).
 */
export type TenantId = string | undefined;

/** A timer as MongoDB (the source of truth) stores it. */
export interface TimerDocument {
  /** An ObjectId: 12 bytes in MongoDB, 24 hex characters in Redis and the API, sortable by creation. */
  _id: ObjectId;
  /**
   * The tenant that created it. Absent for the default tenant: timers created without API keys, and every
   * timer stored before tenants existed, are the default tenant's.
   */
  tenant?: string;
  url: string;
  /** When the timer fires; `time_left` counts down to it. */
  dueAt: Date;
  /** When the next delivery attempt runs: `dueAt` until a failed attempt schedules a retry. */
  runAt: Date;
  /**
   * As stored: `pending` until the first attempt's outcome is recorded (the API shows a due `pending` timer
   * as `delivering`, see `shownStatus`), `delivering` while a retry is scheduled, then final.
   */
  status: TimerStatus;
  /** Attempts whose outcome was recorded (one cut short by a worker's death is not counted). */
  attempts: number;
  /** Absent until an attempt fails. */
  lastError?: string | null;
  /**
   * Absent unless the creator sent an Idempotency-Key (sparse unique index); scoped to the tenant, see
   * `storedIdempotencyKey`.
   */
  idempotencyKey?: string;
  createdAt: Date;
  /** Absent until the first change after creation. */
  updatedAt?: Date;
  deliveredAt?: Date;
}

/** What the API shows of a timer. */
export interface TimerView {
  id: string;
  time_left: number;
  status: TimerStatus;
  url: string;
  due_at: string;
  attempts: number;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
  next_attempt_at: string | null;
}

/**
 * The status the API shows. No write happens between "due" and "sent", so a stored `pending` timer whose
 * run time has passed is one being delivered (or about to be, while no worker runs): `delivering`.
 */
export function shownStatus(timer: Pick<TimerDocument, 'status' | 'runAt'>, now = Date.now()): TimerStatus {
  return timer.status === 'pending' && timer.runAt.getTime() <= now ? 'delivering' : timer.status;
}

export function toTimerView(timer: TimerDocument, now = Date.now()): TimerView {
  const waiting = timer.status === 'pending' || timer.status === 'delivering';
  return {
    id: timer._id.toHexString(),
    // Whole seconds, rounded up, so a timer reads 0 only once its due time has passed.
    time_left: Math.max(0, Math.ceil((timer.dueAt.getTime() - now) / 1000)),
    status: shownStatus(timer, now),
    url: timer.url,
    due_at: timer.dueAt.toISOString(),
    attempts: timer.attempts,
    last_error: timer.lastError ?? null,
    created_at: timer.createdAt.toISOString(),
    delivered_at: timer.deliveredAt ? timer.deliveredAt.toISOString() : null,
    next_attempt_at: waiting ? timer.runAt.toISOString() : null,
  };
}

/**
 * The Idempotency-Key as stored: the header itself for the default tenant (as before tenants existed), else
 * `<tenant> <key>`. A header cannot contain a space, so two tenants' keys never collide, and neither does
 * a default-tenant key with a tenant's.
 */
export function storedIdempotencyKey(tenant: TenantId, key: string): string {
  return tenant === undefined ? key : `${tenant} ${key}`;
}

/** Whether `id` is a timer id: an ObjectId's 24 lowercase hex digits (the timing wheel stores its 12 bytes). */
export function isTimerId(id: string): boolean {
  return /^[0-9a-f]{24}$/.test(id);
}

/** Parses an API or Redis timer id; `undefined` for anything that is not one (the API answers 404). */
export function parseTimerId(id: string): ObjectId | undefined {
  return isTimerId(id) ? ObjectId.createFromHexString(id) : undefined;
}
