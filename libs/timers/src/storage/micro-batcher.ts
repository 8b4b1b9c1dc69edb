/**
 * Collects calls and runs them as one batch: deliveries run with high concurrency, and one MongoDB
 * statement for a batch of timers costs about what one for a single timer does (much more so on
 * FerretDB, where a statement scans the collection). One batch runs at a time; calls arriving meanwhile
 * form the next batch, so batches grow with load and the database sees no pile-up of concurrent writes.
 * Each caller gets its own result.
 */
export class MicroBatcher<In, Out> {
  private pending: Array<{
    input: In;
    resolve: (out: Out) => void;
    reject: (error: unknown) => void;
  }> = [];
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    private readonly runBatch: (inputs: In[]) => Promise<Out[]>,
    private readonly maxBatch = 1_000,
    private readonly maxWaitMs = 2,
  ) {}

  submit(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      if (!this.running) this.timer ??= setTimeout(() => void this.flush(), this.maxWaitMs);
    });
  }

  private async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
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
