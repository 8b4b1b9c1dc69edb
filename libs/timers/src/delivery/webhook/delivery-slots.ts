/** Something to start once it has a slot; it calls `done` exactly once when it no longer needs it. */
export type SlotTask = (done: () => void) => void;

interface HostSlots {
  active: number;
  waiting: FifoQueue<SlotTask>;
}

/**
 * Caps deliveries in flight per process and per target host. A task takes a host slot first and then a
 * process slot, so a task waiting for a busy host holds no process slot and cannot keep other hosts'
 * deliveries waiting. Callbacks rather than promises: at tens of thousands of deliveries a second the
 * per-task promises and closures of a general limiter are a measurable share of the worker's CPU.
 */
export class DeliverySlots {
  private active = 0;
  /** Tasks holding a host slot that wait for a process slot, in arrival order. */
  private readonly ready = new FifoQueue<{ host: string; task: SlotTask }>();
  private readonly hosts = new Map<string, HostSlots>();

  constructor(
    private readonly perProcess: number,
    private readonly perHost: number,
  ) {}

  run(host: string, task: SlotTask): void {
    let slots = this.hosts.get(host);
    if (!slots) {
      slots = { active: 0, waiting: new FifoQueue() };
      this.hosts.set(host, slots);
    }
    if (slots.active >= this.perHost) {
      slots.waiting.push(task);
      return;
    }
    slots.active++;
    this.ready.push({ host, task });
    this.startReady();
  }

  /** Deliveries running now (holding a process slot). */
  get inFlight(): number {
    return this.active;
  }

  /** Hosts with deliveries running or waiting (idle hosts are forgotten). */
  get hostCount(): number {
    return this.hosts.size;
  }

  private startReady(): void {
    while (this.active < this.perProcess && this.ready.length) {
      const { host, task } = this.ready.shift()!;
      this.active++;
      let released = false;
      task(() => {
        if (released) return;
        released = true;
        this.release(host);
      });
    }
  }

  private release(host: string): void {
    this.active--;
    const slots = this.hosts.get(host)!;
    const next = slots.waiting.shift();
    if (next) this.ready.push({ host, task: next });
    else if (--slots.active === 0) this.hosts.delete(host);
    this.startReady();
  }
}

/** An array-backed queue with O(1) shift (Array#shift copies, which adds up at 20,000 waiting tasks). */
export class FifoQueue<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1_024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
