import { BuildCancelledError } from './build-cancelled-error';
import type { BuildPhase, ConsolidationOptions } from './consolidation';

/** Counts the bytes read of the current input; between chunks, reports progress and honours cancellation. */
export class ProgressWatch {
  rowsRead = 0;
  private phase: BuildPhase = 'tracks';
  private bytesRead = 0;
  private bytesTotal: number | null = null;
  private lastCheck = 0;
  private readonly intervalMs: number;

  constructor(private readonly options: Pick<ConsolidationOptions, 'onProgress' | 'isCancelled' | 'checkIntervalMs'>) {
    this.intervalMs = options.checkIntervalMs ?? 500;
  }

  startPhase(phase: BuildPhase, bytesTotal: number | null): void {
    this.phase = phase;
    this.bytesRead = 0;
    this.bytesTotal = bytesTotal;
  }

  addBytes(bytes: number): void {
    this.bytesRead += bytes;
  }

  async checkpoint(force: boolean): Promise<void> {
    const now = Date.now();
    if (!force && now - this.lastCheck < this.intervalMs) return;
    this.lastCheck = now;
    if (await this.options.isCancelled?.()) throw new BuildCancelledError();
    const percent = this.bytesTotal ? Math.min(100, Math.round((this.bytesRead / this.bytesTotal) * 1000) / 10) : null;
    await this.options.onProgress?.({
      phase: this.phase,
      rowsRead: this.rowsRead,
      bytesRead: this.bytesRead,
      bytesTotal: this.bytesTotal,
      percent,
    });
  }
}
