import type { LabelPayout } from './consolidation';
import { splitByLargestRemainder } from './money';

/**
 * Phase 5: shares the revenue among the labels in proportion to their seconds, to the cent (the payouts
 * add up to the total), sorted by label. What no label is paid (all of it when no stream hit a known
 * track) is `unallocatedCents`.
 */
export function attributeToLabels(
  totalCents: bigint,
  labelNames: string[],
  labelSeconds: Float64Array,
): { labels: LabelPayout[]; unallocatedCents: number } {
  const payouts = splitByLargestRemainder(
    totalCents,
    labelNames.map((label, i) => ({ key: label, weight: labelSeconds[i] })),
  );
  const labels = labelNames
    .map((label, i) => ({ label, seconds: labelSeconds[i], payoutCents: Number(payouts.get(label) ?? 0n) }))
    .sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  const paid = labels.reduce((sum, { payoutCents }) => sum + payoutCents, 0);
  return { labels, unallocatedCents: Number(totalCents) - paid };
}
