import { BuildInputError } from '../inputs/input-errors';
import type { InputProblem } from './consolidation';

/** The problems of one consolidation: all counted, the first `maxReported` kept with where they are. */
export class ProblemLog {
  readonly reported: InputProblem[] = [];
  count = 0;

  constructor(private readonly maxReported: number) {}

  /** How many more problems are kept with their place (a streams thread keeps at most this many). */
  get room(): number {
    return Math.max(0, this.maxReported - this.reported.length);
  }

  report(problem: InputProblem): void {
    this.count++;
    if (this.reported.length < this.maxReported) this.reported.push(problem);
  }

  /** Problems a streams thread counted beyond those it kept. */
  countUnreported(problems: number): void {
    this.count += problems;
  }

  /** Fails the build when more than `maxShare` of an input's lines (or elements) is malformed, naming the first. */
  failOnBadShare(what: string, bad: number, total: number, maxShare: number, source: InputProblem['source']): void {
    if (total === 0 || bad / total <= maxShare) return;
    const first = this.reported.find((problem) => problem.source === source);
    const where = first
      ? ` First: ${first.line !== undefined ? `line ${first.line}` : `element ${first.element}`}: ${first.reason}.`
      : '';
    throw new BuildInputError(
      `${bad} of ${total} ${what} (${((bad / total) * 100).toFixed(2)}%) are malformed, more than the allowed ${(maxShare * 100).toFixed(2)}% (ROYALTIES_MAX_BAD_LINE_SHARE).${where}`,
    );
  }
}
