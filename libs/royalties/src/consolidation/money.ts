/**
 * Exact money arithmetic. Fees are integer cents; a user's revenue contribution is fee cents times the
 * origin's percentage, i.e. an integer number of "revenue units" of 1/10,000 of the currency, summed in
 * BigInt so no binary floating point ever touches an amount.
 */

export type Origin = 'app_store' | 'web';

/** Share of the fee that counts as revenue, in percent, per origin (app stores keep 30%). */
export const ORIGIN_REVENUE_PERCENT: Readonly<Record<Origin, number>> = { app_store: 70, web: 90 };

/** Revenue units per cent: fee cents x percent gives units of 1/100 cent. */
const UNITS_PER_CENT = 100n;

/** `7,99` -> 799, `7` -> 700, `7,9` -> 790; anything else (negative, dot, three decimals) -> null. */
export function parseFeeCents(text: string): number | null {
  const match = /^(\d{1,9})(?:,(\d{1,2}))?$/.exec(text.trim());
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] ?? '0').padEnd(2, '0'));
}

/** Rounds revenue units to cents, half up (amounts are never negative). */
export function unitsToCents(units: bigint): bigint {
  return (units + UNITS_PER_CENT / 2n) / UNITS_PER_CENT;
}

/** `123456n, 4` -> `"12.3456"`; exact decimal text for an integer amount of minor units. */
export function formatMinorUnits(amount: bigint, decimals: number): string {
  const negative = amount < 0n;
  const digits = (negative ? -amount : amount).toString().padStart(decimals + 1, '0');
  const text = decimals ? `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}` : digits;
  return negative ? `-${text}` : text;
}

/** Cents as a JSON number of currency units (`500000n` -> `5000`); display only, never summed. */
export function centsToNumber(cents: bigint | number): number {
  return Number(formatMinorUnits(BigInt(cents), 2));
}

/**
 * Splits `totalCents` in proportion to integer weights so the parts add up exactly to the total
 * (largest-remainder / Hamilton method): each part gets floor(total x weight / sum of weights) cents,
 * then the cents still missing go one each to the parts with the largest remainders, ties broken by
 * key in ascending order so the split is deterministic. With a zero weight sum every part is 0.
 */
export function splitByLargestRemainder(
  totalCents: bigint,
  weights: ReadonlyArray<{ key: string; weight: number }>,
): Map<string, bigint> {
  const sum = weights.reduce((acc, { weight }) => acc + BigInt(weight), 0n);
  const parts = new Map<string, bigint>();
  if (sum === 0n) {
    for (const { key } of weights) parts.set(key, 0n);
    return parts;
  }
  const remainders: Array<{ key: string; remainder: bigint }> = [];
  let allocated = 0n;
  for (const { key, weight } of weights) {
    const scaled = totalCents * BigInt(weight);
    const floor = scaled / sum;
    parts.set(key, floor);
    allocated += floor;
    remainders.push({ key, remainder: scaled % sum });
  }
  remainders.sort((a, b) =>
    a.remainder === b.remainder ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : a.remainder > b.remainder ? -1 : 1,
  );
  // Fewer leftover cents than parts: each floor lost less than one cent.
  for (let i = 0; allocated < totalCents; i++, allocated++) {
    const { key } = remainders[i];
    parts.set(key, (parts.get(key) ?? 0n) + 1n);
  }
  return parts;
}
