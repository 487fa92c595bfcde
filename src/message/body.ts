import { InvalidMessageError } from '../errors';

/**
 * Bodies are opaque bytes, JSON by convention: a Buffer or Uint8Array goes as is, a string
 * as its UTF-8 bytes, anything else as JSON text.
 */
export function encodeBody(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  let text: string | undefined;
  try {
    text = JSON.stringify(body);
  } catch (err) {
    throw new InvalidMessageError(`body cannot be encoded as JSON: ${(err as Error).message}`, { cause: err, code: 'BAD_BODY' });
  }
  if (text === undefined) throw new InvalidMessageError(`body of type ${typeof body} cannot be encoded as JSON`, { code: 'BAD_BODY' });
  return Buffer.from(text, 'utf8');
}
