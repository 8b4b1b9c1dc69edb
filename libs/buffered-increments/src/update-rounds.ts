import { DocumentBatch } from './document-batch';

/** One path of one operator, ready for a MongoDB update. */
export interface PlannedItem {
  mongoOperator: '$set' | '$max' | '$min' | '$inc';
  path: string;
  value: unknown;
  /** Buffered field names this item carries (an `$inc` may come from an integer and a decimal sum). */
  fields: string[];
}

/** A document's updates, round by round, and what could not be placed. */
export interface DocumentRounds {
  rounds: PlannedItem[][];
  overflow: PlannedItem[];
}

/**
 * Splits one document's buffered updates into rounds MongoDB accepts: one update may not touch a path
 * and a path inside it. Conflicting paths are ordered as their calls were where the buffer knows
 * (`$set`s carry their call order: a later parent replaces earlier children, a later child goes in a
 * round after its parent), and otherwise `$set`, `$max`, `$min`, `$inc`, parents before children.
 * Updates without conflicts all go in round 0, so almost every document needs one update.
 */
export function planRounds(document: DocumentBatch, maxRounds: number): DocumentRounds {
  const items: PlannedItem[] = [];
  const sets = [...document.set.entries()].sort(([, a], [, b]) => a.order - b.order);
  const replaced = replacedByLaterParents(sets.map(([path]) => path));
  for (const [path, set] of sets) {
    if (!replaced.has(path)) items.push({ mongoOperator: '$set', path, value: set.value, fields: [set.field] });
  }
  const byDepth = <T>(map: Map<string, T>) => [...map.entries()].sort(([a], [b]) => depthOf(a) - depthOf(b));
  for (const [path, max] of byDepth(document.max))
    items.push({ mongoOperator: '$max', path, value: max.value, fields: [max.field] });
  for (const [path, min] of byDepth(document.min))
    items.push({ mongoOperator: '$min', path, value: min.value, fields: [min.field] });
  for (const [path, inc] of byDepth(document.inc))
    items.push({ mongoOperator: '$inc', path, value: inc.value, fields: inc.fields });

  // Each item goes one round after the latest earlier item it conflicts with. Latest round per exact
  // path and per enclosing prefix keep this O(depth) per item.
  const exact = new Map<string, number>();
  const enclosing = new Map<string, number>();
  const rounds: PlannedItem[][] = [];
  const overflow: PlannedItem[] = [];
  for (const item of items) {
    const prefixes = prefixesOf(item.path);
    let round = 0;
    const after = (earlier: number | undefined) => {
      if (earlier !== undefined) round = Math.max(round, earlier + 1);
    };
    after(exact.get(item.path));
    after(enclosing.get(item.path));
    for (const prefix of prefixes) after(exact.get(prefix));
    if (round >= maxRounds) {
      overflow.push(item);
      continue;
    }
    (rounds[round] ??= []).push(item);
    exact.set(item.path, Math.max(round, exact.get(item.path) ?? -1));
    for (const prefix of prefixes) enclosing.set(prefix, Math.max(round, enclosing.get(prefix) ?? -1));
  }
  return { rounds: rounds.filter(Boolean), overflow };
}

/** Paths (in call order) that a later `$set` of an enclosing path replaces, as the calls in sequence would. */
function replacedByLaterParents(pathsInCallOrder: string[]): Set<string> {
  const replaced = new Set<string>();
  const later = new Set<string>();
  for (let i = pathsInCallOrder.length - 1; i >= 0; i--) {
    const path = pathsInCallOrder[i];
    if (prefixesOf(path).some((prefix) => later.has(prefix))) replaced.add(path);
    later.add(path);
  }
  return replaced;
}

function prefixesOf(path: string): string[] {
  const prefixes: string[] = [];
  for (let i = path.indexOf('.'); i !== -1; i = path.indexOf('.', i + 1)) prefixes.push(path.slice(0, i));
  return prefixes;
}

const depthOf = (path: string) => path.split('.').length;
