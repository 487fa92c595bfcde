import type { BodyFormat } from '../config/types';
import { errorMessage, InvalidMessageError } from '../errors';

/**
 * Bodies are opaque bytes, JSON by convention: a Buffer or Uint8Array goes as is, a string
 * as its UTF-8 bytes, anything else as JSON text.
 *
 * For a lane of `format: "json"` the bytes must be JSON, or the worker would dead-letter the
 * message as BAD_BODY when it comes due — hours later, far from the mistake. So there a
 * string is a JSON string value (`"hello"` goes as `"hello"` with its quotes, as
 * `JSON.stringify` would), and bytes given as they are are checked here, at publish.
 */
export function encodeBody(body: unknown, format: BodyFormat = 'raw'): Buffer {
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (format === 'json') assertJson(bytes);
    return bytes;
  }
  if (typeof body === 'string' && format === 'raw') return Buffer.from(body, 'utf8');
  let text: string | undefined;
  try {
    text = JSON.stringify(body);
  } catch (err) {
    throw new InvalidMessageError(`body cannot be encoded as JSON: ${errorMessage(err)}`, { cause: err, code: 'BAD_BODY' });
  }
  if (text === undefined) throw new InvalidMessageError(`body of type ${typeof body} cannot be encoded as JSON`, { code: 'BAD_BODY' });
  return Buffer.from(text, 'utf8');
}

function assertJson(bytes: Buffer): void {
  try {
    JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidMessageError(`body is not valid JSON, and the lane's format is "json": ${errorMessage(err)}`, {
      cause: err,
      code: 'BAD_BODY',
    });
  }
}
