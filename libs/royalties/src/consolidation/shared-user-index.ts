/**
 * The users file's ids -> ledger position, as a hash table in SharedArrayBuffers: built once by the
 * worker's thread after the users phase, then read by every streams thread without a copy. A thread
 * that kept its own `Map` of the ~1 M ids its byte range names (and sent them back for the merge) cost
 * well over 100 MB per thread; this table costs ~30 MB for 1 M ids, once, shared by all threads, and
 * lets a thread return its sums as typed arrays indexed by ledger position.
 *
 * Layout (all shared, none resized after the build):
 * - `chars`: the ids' UTF-16 code units one after the other (one byte per unit when every id is Latin-1,
 *   as generated ids are), so a JavaScript string is compared unit by unit, without decoding;
 * - `starts`: where id `i` starts in `chars` (`starts[i + 1]` is where it ends);
 * - `slots`: open addressing with linear probing, two Int32 per slot: the id's hash, and its position
 *   + 1 (0: empty slot). At least twice as many slots as ids, so a probe sequence stays short; the hash
 *   beside the position means a colliding slot is skipped without touching `chars`.
 */
export interface SharedUserIndexBuffers {
  chars: SharedArrayBuffer;
  wide: boolean;
  starts: SharedArrayBuffer;
  slots: SharedArrayBuffer;
}

export class SharedUserIndex {
  /** Number of ids: positions are 0 to size - 1, in the order given to `build`. */
  readonly size: number;
  private readonly chars: Uint8Array | Uint16Array;
  private readonly starts: Uint32Array;
  private readonly slots: Int32Array;
  private readonly mask: number;

  private constructor(readonly buffers: SharedUserIndexBuffers) {
    this.chars = buffers.wide ? new Uint16Array(buffers.chars) : new Uint8Array(buffers.chars);
    this.starts = new Uint32Array(buffers.starts);
    this.slots = new Int32Array(buffers.slots);
    this.size = this.starts.length - 1;
    this.mask = this.slots.length / 2 - 1;
  }

  /** An index of distinct `ids`: id `ids[i]` is at position `i`. */
  static build(ids: readonly string[]): SharedUserIndex {
    let units = 0;
    let wide = false;
    for (const id of ids) {
      units += id.length;
      for (let c = 0; c < id.length && !wide; c++) wide = id.charCodeAt(c) > 0xff;
    }
    let slotCount = 2;
    while (slotCount < ids.length * 2) slotCount *= 2;
    const buffers: SharedUserIndexBuffers = {
      chars: new SharedArrayBuffer(units * (wide ? 2 : 1)),
      wide,
      starts: new SharedArrayBuffer((ids.length + 1) * 4),
      slots: new SharedArrayBuffer(slotCount * 8),
    };
    const index = new SharedUserIndex(buffers);
    let start = 0;
    ids.forEach((id, position) => {
      index.starts[position] = start;
      for (let c = 0; c < id.length; c++) index.chars[start + c] = id.charCodeAt(c);
      start += id.length;
      const hash = hashOf(id);
      let slot = hash & index.mask;
      while (index.slots[slot * 2 + 1] !== 0) slot = (slot + 1) & index.mask;
      index.slots[slot * 2] = hash;
      index.slots[slot * 2 + 1] = position + 1;
    });
    index.starts[ids.length] = start;
    return index;
  }

  /** The same index over buffers another thread built (they are shared, not copied). */
  static from(buffers: SharedUserIndexBuffers): SharedUserIndex {
    return new SharedUserIndex(buffers);
  }

  /** Position of `id`, or undefined when it is not in the index. Runs once per stream line: no allocation. */
  positionOf(id: string): number | undefined {
    const hash = hashOf(id);
    const slots = this.slots;
    for (let slot = hash & this.mask; ; slot = (slot + 1) & this.mask) {
      const stored = slots[slot * 2 + 1];
      if (stored === 0) return undefined;
      if (slots[slot * 2] === hash && this.idAt(stored - 1, id)) return stored - 1;
    }
  }

  private idAt(position: number, id: string): boolean {
    const start = this.starts[position];
    if (this.starts[position + 1] - start !== id.length) return false;
    const chars = this.chars;
    for (let c = 0; c < id.length; c++) if (chars[start + c] !== id.charCodeAt(c)) return false;
    return true;
  }
}

/** FNV-1a over UTF-16 code units, with a final mix so that ids differing in their last digits spread over the table. */
function hashOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let c = 0; c < id.length; c++) hash = Math.imul(hash ^ id.charCodeAt(c), 0x01000193);
  hash ^= hash >>> 15;
  hash = Math.imul(hash, 0x2c1b3c6d);
  return hash ^ (hash >>> 12);
}
