import { OPERATOR } from './buffered-field';

/**
 * One update of a call: a buffered field and its value. Integer `$inc`s of one field made while the
 * call gathers are summed into one entry, so the call carries one update per field however many
 * callers counted it; each caller still learns its own outcome.
 */
interface Entry {
  field: string;
  /** The value sent; a summed `$inc` sends `sum` instead. */
  value: string;
  /** Sum of the members' deltas of an integer `$inc` entry; NaN for an entry nothing may join. */
  sum: number;
  /** The first caller (an index into `resolves` / `rejects` / `values`) this entry carries. */
  first: number;
  /** Callers summed in after the first. */
  more?: number[];
  /** Send each member as its own update (a later delta of the other sign arrived for the field). */
  split: boolean;
}

/** A caller whose update must travel again on its own: its summed entry was refused for overflow. */
export interface ResentUpdate {
  field: string;
  value: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * The updates a producer gathers for one script call to one shard, in call order. Integer `$inc`s of
 * one field are summed as they arrive, which keeps every outcome a caller could observe:
 * - only deltas of one sign are summed, so no partial sum can overflow unless the whole sum does; a sum
 *   refused for overflow changed nothing, and its callers' deltas travel again one by one;
 * - a delta of the other sign for a field with a summed entry sends that entry as its members, in
 *   their order, and starts a new entry after them;
 * - a `$set` (which drops what is buffered for its path) closes the path's entry: later `$inc`s start
 *   a new entry after it, so they land after the `$set` as they were made.
 * `$max`, `$min`, `$set` and non-integer `$inc`s travel one update per call as made.
 */
export class OutgoingCall {
  private readonly resolves: Array<() => void> = [];
  private readonly rejects: Array<(error: Error) => void> = [];
  /** Each caller's own value, for sending it alone. */
  private readonly values: string[] = [];
  private readonly entries: Entry[] = [];
  /** The entry later integer `$inc`s of a field join. */
  private readonly open = new Map<string, Entry>();
  /** Every update is an integer `$inc`: the script may run each as a bare HINCRBY. */
  private integersOnly = true;

  /** `capacity`: the updates after which the producer sends the call (fixed when the call starts gathering). */
  constructor(readonly capacity: number) {}

  /** Updates the call will carry. */
  get size(): number {
    return this.entries.length;
  }

  /** Adds one caller's update; `delta` is its integer `$inc` delta as a number, or NaN for anything else. */
  add(field: string, value: string, delta: number, resolve: () => void, reject: (error: Error) => void): void {
    const member = this.resolves.length;
    this.resolves.push(resolve);
    this.rejects.push(reject);
    this.values.push(value);
    if (delta === delta) {
      const entry = this.open.get(field);
      if (entry !== undefined) {
        const sum = entry.sum + delta;
        if ((delta >= 0 ? entry.sum >= 0 : entry.sum <= 0) && Number.isSafeInteger(sum)) {
          entry.sum = sum;
          (entry.more ??= []).push(member);
          return;
        }
        // The other sign (or past 2^53): the deltas so far go as made, this one starts a new entry.
        if (entry.more) entry.split = true;
      }
      const fresh: Entry = { field, value, sum: delta, first: member, split: false };
      this.entries.push(fresh);
      this.open.set(field, fresh);
      return;
    }
    this.integersOnly = false;
    if (field.charCodeAt(0) === SET_CODE) this.open.delete(OPERATOR.incInteger + field.slice(1));
    this.entries.push({ field, value, sum: NaN, first: member, split: false });
  }

  /**
   * The call's updates in call order, as the buffer script takes them: field, value pairs, or runs of
   * updates with one value (value, count, fields...) when that sends fewer arguments, as it does when
   * callers mostly add the same delta; runs of integer `$inc`s alone go as `increments`, which the
   * script runs as one HINCRBY each.
   */
  encode(): { mode: 'updates' | 'runs' | 'increments'; args: string[] } {
    const fields: string[] = [];
    const values: string[] = [];
    let runs = 0;
    const emit = (field: string, value: string) => {
      if (values.length === 0 || values[values.length - 1] !== value) runs += 1;
      fields.push(field);
      values.push(value);
    };
    for (const entry of this.entries) {
      if (entry.more === undefined) emit(entry.field, entry.value);
      else if (!entry.split) emit(entry.field, String(entry.sum));
      else {
        emit(entry.field, entry.value);
        for (const member of entry.more) emit(entry.field, this.values[member]);
      }
    }
    const args: string[] = [];
    if (2 * runs >= fields.length) {
      for (let i = 0; i < fields.length; i++) args.push(fields[i], values[i]);
      return { mode: 'updates', args };
    }
    for (let start = 0; start < fields.length;) {
      let end = start + 1;
      while (end < fields.length && values[end] === values[start]) end++;
      args.push(values[start], String(end - start));
      for (let i = start; i < end; i++) args.push(fields[i]);
      start = end;
    }
    return { mode: this.integersOnly ? 'increments' : 'runs', args };
  }

  /** Every update was buffered. */
  resolveAll(): void {
    for (const resolve of this.resolves) resolve();
  }

  /** The call failed as a whole: nothing (or, with a lost reply, maybe everything) was buffered. */
  rejectAll(error: Error): void {
    for (const reject of this.rejects) reject(error);
  }

  /**
   * Settles each caller by the outcome of the update that carried it (one outcome per sent update, as
   * `encode` listed them; 0 = buffered). Returns the callers of summed updates refused for overflow, which
   * must travel again one by one: each alone may fit where their sum did not.
   */
  settle(
    outcomes: Array<number | string>,
    refusal: (outcome: number | string, field: string) => Error,
  ): ResentUpdate[] {
    const resent: ResentUpdate[] = [];
    let sent = 0;
    const answer = (member: number, outcome: number | string, field: string) => {
      if (outcome === 0) this.resolves[member]();
      else this.rejects[member](refusal(outcome, field));
    };
    for (const entry of this.entries) {
      if (entry.more === undefined || entry.split) {
        answer(entry.first, outcomes[sent++], entry.field);
        for (const member of entry.more ?? []) answer(member, outcomes[sent++], entry.field);
        continue;
      }
      const outcome = outcomes[sent++];
      if (typeof outcome === 'string' && outcome.includes('overflow')) {
        for (const member of [entry.first, ...entry.more])
          resent.push({
            field: entry.field,
            value: this.values[member],
            resolve: this.resolves[member],
            reject: this.rejects[member],
          });
        continue;
      }
      for (const member of [entry.first, ...entry.more]) answer(member, outcome, entry.field);
    }
    return resent;
  }
}

const SET_CODE = OPERATOR.set.charCodeAt(0);
