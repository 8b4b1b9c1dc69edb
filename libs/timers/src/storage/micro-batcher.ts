/**
 * Collects calls made within a few milliseconds and runs them as one batch: deliveries run with high
 * concurrency, and one MongoDB statement for a batch of timers costs about what one for a single timer
 * does (much more so on FerretDB, where each statement scans). Each caller gets its own result.
 */
export class MicroBatcher<In, Out> {
  private pending: Array<{ input: In; resolve: (out: Out) => void; reject: (error: unknown) => void }> = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly runBatch: (inputs: In[]) => Promise<Out[]>,
    private readonly maxBatch = 500,
    private readonly maxWaitMs = 5,
  ) {}

  submit(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.maxWaitMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    this.runBatch(batch.map((entry) => entry.input)).then(
      (outputs) => batch.forEach((entry, i) => entry.resolve(outputs[i])),
      (error: unknown) => batch.forEach((entry) => entry.reject(error)),
    );
  }
}
