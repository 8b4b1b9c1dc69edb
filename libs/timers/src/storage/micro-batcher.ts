/**
 * Collects calls and runs them as one batch: deliveries and creations run with high concurrency, and one
 * MongoDB statement or Redis call for a batch of timers costs about what one for a single timer does (much
 * more so on FerretDB, where a statement is a transaction, and an update scans the collection). One batch
 * runs at a time; calls arriving meanwhile form the next batch, so batches grow with load and the database
 * sees no pile-up of concurrent writes. An idle batcher waits `maxWaitMs` for more calls, or with 0 only
 * for the rest of the current event-loop turn (no added latency). Each caller gets its own result.
 */
export class MicroBatcher<In, Out> {
  private pending: Array<{
    input: In;
    resolve: (out: Out) => void;
    reject: (error: unknown) => void;
  }> = [];
  private scheduled = false;
  private running = false;

  constructor(
    private readonly runBatch: (inputs: In[]) => Promise<Out[]>,
    private readonly maxBatch = 1_000,
    private readonly maxWaitMs = 2,
  ) {}

  submit(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      if (this.running || this.scheduled) return;
      this.scheduled = true;
      if (this.maxWaitMs > 0) setTimeout(() => void this.flush(), this.maxWaitMs);
      else setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    if (this.running) return;
    this.running = true;
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, this.maxBatch);
        try {
          const outputs = await this.runBatch(batch.map((entry) => entry.input));
          batch.forEach((entry, i) => entry.resolve(outputs[i]));
        } catch (error) {
          batch.forEach((entry) => entry.reject(error));
        }
      }
    } finally {
      this.running = false;
    }
  }
}
