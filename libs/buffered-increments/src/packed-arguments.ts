/**
 * A call's string arguments packed into one MessagePack array, which the buffer script unpacks with
 * `cmsgpack.unpack`. One argument instead of one per update: the client builds no RESP header per
 * update, and Redis unpacks the array in C.
 *
 * Each string's header is chosen from an upper bound of its UTF-8 length (3 bytes per UTF-16 unit) before
 * it is written; MessagePack lets a header be wider than the string needs, so no string is measured twice.
 * Short ASCII strings take MessagePack's one-byte fixstr header (length under 32).
 */
export function packStrings(strings: readonly string[]): Buffer {
  let bound = 5;
  for (let i = 0; i < strings.length; i++) bound += 5 + 3 * strings[i].length;
  const packed = Buffer.allocUnsafe(bound);
  let offset = 0;
  const count = strings.length;
  if (count < 16) packed[offset++] = 0x90 | count;
  else if (count < 0x10000) {
    packed[offset++] = 0xdc;
    offset = packed.writeUInt16BE(count, offset);
  } else {
    packed[offset++] = 0xdd;
    offset = packed.writeUInt32BE(count, offset);
  }
  for (let i = 0; i < count; i++) {
    const text = strings[i];
    // A short ASCII string (a counter's field names and deltas) is copied a unit per byte under a
    // one-byte header: cheaper than a call into Buffer.write. Any other unit goes the UTF-8 way below.
    if (text.length < 32) {
      const start = offset + 1;
      let unit = 0;
      for (; unit < text.length; unit++) {
        const code = text.charCodeAt(unit);
        if (code > 0x7f) break;
        packed[start + unit] = code;
      }
      if (unit === text.length) {
        packed[offset] = 0xa0 | unit;
        offset = start + unit;
        continue;
      }
    }
    const most = 3 * text.length;
    if (most < 0x100) {
      const length = packed.write(text, offset + 2);
      packed[offset] = 0xd9;
      packed[offset + 1] = length;
      offset += 2 + length;
    } else if (most < 0x10000) {
      const length = packed.write(text, offset + 3);
      packed[offset] = 0xda;
      packed.writeUInt16BE(length, offset + 1);
      offset += 3 + length;
    } else {
      const length = packed.write(text, offset + 5);
      packed[offset] = 0xdb;
      packed.writeUInt32BE(length, offset + 1);
      offset += 5 + length;
    }
  }
  return packed.subarray(0, offset);
}
