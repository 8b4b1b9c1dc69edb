/** Percent-encoding for the texts the fuzzer puts in paths and queries, odd ones included. */

/** encodeURIComponent, except that a lone surrogate (which it refuses) is written as its CESU-8 bytes. */
export function percentEncoded(value: string): string {
  let encoded = '';
  for (let i = 0; i < value.length; i += 1) {
    const code = value.charCodeAt(i);
    const next = value.charCodeAt(i + 1);
    if (code >= 0xd800 && code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      encoded += encodeURIComponent(value.slice(i, i + 2));
      i += 1;
    } else if (code >= 0xd800 && code <= 0xdfff) {
      encoded += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)]
        .map((byte) => `%${byte.toString(16).toUpperCase()}`)
        .join('');
    } else encoded += encodeURIComponent(value[i]);
  }
  return encoded;
}
