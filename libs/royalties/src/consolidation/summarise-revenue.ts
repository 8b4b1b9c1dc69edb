import type { OriginRevenue, RevenueSummary } from './consolidation';
import { formatMinorUnits, Origin, unitsToCents } from './money';
import type { UserFees } from './read-users';

/** Phase 4: the revenue of the listed users, exact and per origin, and the total in cents that labels share. */
export function summariseRevenue(fees: UserFees): { revenue: RevenueSummary; totalCents: bigint } {
  const totalUnits = fees.revenueUnits.app_store + fees.revenueUnits.web;
  const totalCents = unitsToCents(totalUnits);
  const byOrigin = (origin: Origin): OriginRevenue => ({
    users: fees.users[origin],
    feesCents: fees.feesCents[origin],
    revenueExact: formatMinorUnits(fees.revenueUnits[origin], 4),
  });
  return {
    revenue: {
      totalExact: formatMinorUnits(totalUnits, 4),
      totalCents: Number(totalCents),
      byOrigin: { app_store: byOrigin('app_store'), web: byOrigin('web') },
    },
    totalCents,
  };
}
