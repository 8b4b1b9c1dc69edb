import { isBlankLine } from '../inputs/csv-lines';
import type { InputPolicy } from '../inputs/input-policy';
import type { BuildCounts } from './consolidation';
import { streamCsv, USERS_HEADER } from './csv-input';
import { ORIGIN_REVENUE_PERCENT, Origin, parseFeeCents } from './money';
import type { ProblemLog } from './problem-log';
import type { ProgressWatch } from './progress-watch';
import { UserLedger } from './user-ledger';

/** What the listed users pay, per origin: the input of the revenue summary. */
export interface UserFees {
  users: Record<Origin, number>;
  feesCents: Record<Origin, number>;
  /** Fee cents times the origin's revenue percentage: revenue in units of 1/10,000 of the currency. */
  revenueUnits: Record<Origin, bigint>;
}

export interface UsersRead {
  /** The users file's users, in file order (their positions are the ledger's first ones). */
  ledger: UserLedger;
  counts: BuildCounts['users'];
  fees: UserFees;
}

/** Phase 2: reads the users file into a new ledger and sums the fees per origin. */
export async function readUsers(
  location: string,
  policy: InputPolicy,
  watch: ProgressWatch,
  problems: ProblemLog,
): Promise<UsersRead> {
  const ledger = new UserLedger();
  const fees: UserFees = {
    users: { app_store: 0, web: 0 },
    feesCents: { app_store: 0, web: 0 },
    revenueUnits: { app_store: 0n, web: 0n },
  };
  const counts = { lines: 0, listed: 0, bad: 0 };
  // Reasons name the field, never its content (see readStreamFields).
  const addUserLine = (fields: string[]): string | null => {
    if (fields.length !== 4) return `expected 4 fields separated by ';', found ${fields.length}`;
    const userId = fields[0].trim();
    const productType = fields[1].trim();
    const fee = parseFeeCents(fields[2]);
    const origin = fields[3].trim();
    if (!userId) return 'user_id is empty';
    if (!productType) return 'product_type is empty';
    if (fee === null) return 'fee is not an amount with a decimal comma like 7,99';
    if (origin !== 'app_store' && origin !== 'web') return 'origin is neither app_store nor web';
    if (!ledger.addListed(userId, productType, fee, origin))
      return 'user_id is listed on an earlier line too (the first listing counts)';
    counts.listed++;
    fees.users[origin]++;
    fees.feesCents[origin] += fee;
    fees.revenueUnits[origin] += BigInt(fee * ORIGIN_REVENUE_PERCENT[origin]);
    return null;
  };
  await streamCsv(location, policy, 'users', 'users CSV', USERS_HEADER, watch, (rows, firstLine, skip) => {
    for (let r = skip; r < rows.length; r++) {
      const fields = rows[r];
      if (isBlankLine(fields)) continue;
      counts.lines++;
      const reason = addUserLine(fields);
      if (reason !== null) {
        counts.bad++;
        problems.report({ source: 'users', line: firstLine + r, reason });
      }
    }
  });
  return { ledger, counts, fees };
}
