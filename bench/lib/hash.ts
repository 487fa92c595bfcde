/**
 * A deterministic, well-spread hash of a string to [0, 1): FNV-1a (32 bit) followed by a
 * murmur3-style finaliser, so ids that differ in one digit land far apart. Benchmarks use it
 * to give every id (or index) its own interval or delay, the same in every run and process.
 */
export function unitHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}
