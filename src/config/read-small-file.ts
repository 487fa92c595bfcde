import { closeSync, openSync, readSync } from 'node:fs';

/** Secrets and URL lists are short; anything longer is a wrong path, not a value. */
export const SMALL_FILE_MAX_BYTES = 64 * 1024;

/**
 * Reads a short text file (`amqp.urlFile`, a header's `{ "file" }`) as UTF-8, refusing one
 * longer than `maxBytes`. `readFileSync` would read a device such as `/dev/zero` or
 * `/dev/urandom` until memory ran out; this stops one byte past the limit.
 *
 * @throws the fs error (with its `code`), or an Error saying the file is too large
 */
export function readSmallFile(path: string, maxBytes = SMALL_FILE_MAX_BYTES): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > maxBytes) throw new Error(`larger than ${maxBytes / 1024} KiB`);
    }
    return buf.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}
