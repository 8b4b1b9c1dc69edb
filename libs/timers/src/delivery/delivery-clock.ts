import { Injectable, Logger } from '@nestjs/common';
import { DueIndex } from '../storage/due-index/due-index';

/** A timer held until its run time, with what to do then. */
interface ArmedEntry {
  id: string;
  runAt: number;
  /** The claim that armed it (see DueIndex.take). */
  claim: string;
  /** Called once: `true` when it may be sent now, `false` when it was cancelled since its claim. */
  decide: (fire: boolean) => void;
}

/** While Redis cannot confirm armed timers, ask again this often (they are not sent unconfirmed). */
const CONFIRM_RETRY_MS = 250;
/** Timers handed over to be sent before the event loop gets a turn (see decideInSlices). */
const DECIDE_SLICE = 100;

/**
 * Holds the armed timers of this process (claimed ahead of their run time, see DueIndex.claimDue) and
 * fires each one at its run time: all timers that are due go to Redis in one `take` call, which says
 * which of them this process still holds (not cancelled, nor re-claimed by another worker after a lapsed
 * lease), and those are handed back to be sent. One call is in flight at a time, so timers falling due
 * meanwhile share the next one.
 *
 * Why: with the claiming, the queue job, the lease and the staged url all done before the due time, a
 * burst of timers falling due in the same second costs only the POSTs when it comes.
 */
@Injectable()
export class DeliveryClock {
  private readonly logger = new Logger(DeliveryClock.name);
  /** Entries by run time (ms), and the distinct run times as a binary min-heap. */
  private readonly byRunAt = new Map<number, ArmedEntry[]>();
  private readonly runAts: number[] = [];
  private wakeAt = Infinity;
  private wake?: NodeJS.Timeout;
  private confirming = false;
  private held = 0;
  private closing = false;

  constructor(private readonly dueIndex: DueIndex) {}

  /** Timers held for their run time and not fired yet. */
  get size(): number {
    return this.held;
  }

  /**
   * Whether an armed timer falls due within `ms` from now, or a due group is being confirmed: a burst is
   * under way or about to start even when no POST is in flight at this instant (between its groups).
   */
  dueWithin(ms: number): boolean {
    return this.confirming || (this.runAts.length > 0 && this.runAts[0] <= Date.now() + ms);
  }

  /**
   * Fires the timers at their run times: `onFire` for each one that may be sent then. Resolves with the
   * ids that were not (cancelled since their claim) once every timer is decided.
   */
  whenDue(
    timers: Array<{ id: string; runAt: number; claim: string }>,
    onFire: (id: string) => void,
  ): Promise<string[]> {
    if (!timers.length) return Promise.resolve([]);
    return new Promise((resolve) => {
      const notFired: string[] = [];
      let undecided = timers.length;
      for (const timer of timers) {
        this.arm({
          id: timer.id,
          runAt: timer.runAt,
          claim: timer.claim,
          decide: (fire) => {
            if (fire) onFire(timer.id);
            else notFired.push(timer.id);
            if (--undecided === 0) resolve(notFired);
          },
        });
      }
      this.schedule();
    });
  }

  /**
   * The process is stopping: timers still held keep their run times, but once Redis cannot confirm them
   * they are given up (not sent by this process: their leases lapse and another worker claims them).
   */
  close(): void {
    this.closing = true;
  }

  private arm(entry: ArmedEntry): void {
    this.held++;
    const atTime = this.byRunAt.get(entry.runAt);
    if (atTime) {
      atTime.push(entry);
      return;
    }
    this.byRunAt.set(entry.runAt, [entry]);
    heapPush(this.runAts, entry.runAt);
  }

  /** Sets the wake-up for the earliest run time (unless a confirmation in flight will do it). */
  private schedule(): void {
    if (this.confirming || !this.runAts.length) return;
    const next = this.runAts[0];
    if (next >= this.wakeAt && this.wake) return;
    clearTimeout(this.wake);
    this.wakeAt = next;
    this.wake = setTimeout(() => void this.fireDue(), Math.max(0, next - Date.now()));
  }

  private async fireDue(): Promise<void> {
    this.wake = undefined;
    this.wakeAt = Infinity;
    const now = Date.now();
    const due: ArmedEntry[] = [];
    while (this.runAts.length && this.runAts[0] <= now) {
      const runAt = heapPop(this.runAts);
      for (const entry of this.byRunAt.get(runAt)!) due.push(entry);
      this.byRunAt.delete(runAt);
    }
    if (!due.length) return this.schedule();
    this.confirming = true;
    let fire: boolean[] | undefined;
    try {
      fire = await this.dueIndex.take(due);
    } catch (error) {
      this.logger.warn(
        `confirming ${due.length} due timers failed (${(error as Error).message})${this.closing ? '; giving them up' : '; trying again'}`,
      );
      if (!this.closing) await new Promise((resolve) => setTimeout(resolve, CONFIRM_RETRY_MS));
    }
    this.held -= due.length;
    if (fire || this.closing) await this.decideInSlices(due, fire);
    else for (const entry of due) this.arm(entry);
    this.confirming = false;
    this.schedule();
  }

  /**
   * Decides the timers DECIDE_SLICE at a time, letting the event loop turn in between: the first slice's
   * POSTs go out (their writes, and new connections' hand-over, wait for the loop) while the rest of a
   * large group, which would only wait for a free delivery slot anyway, is still being handed over.
   */
  private async decideInSlices(due: ArmedEntry[], fire: boolean[] | undefined): Promise<void> {
    for (let i = 0; i < due.length; i += DECIDE_SLICE) {
      if (i) await new Promise((resolve) => setImmediate(resolve));
      for (let j = i; j < Math.min(i + DECIDE_SLICE, due.length); j++) due[j].decide(fire?.[j] ?? false);
    }
  }
}

function heapPush(heap: number[], value: number): void {
  let i = heap.push(value) - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent] <= value) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = value;
}

function heapPop(heap: number[]): number {
  const top = heap[0];
  const last = heap.pop()!;
  if (heap.length) {
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const child = left + 1 < heap.length && heap[left + 1] < heap[left] ? left + 1 : left;
      if (heap[child] >= last) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = last;
  }
  return top;
}
