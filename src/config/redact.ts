/**
 * Redaction for logs and `config print`: URLs carry passwords, `amqp.tls.passphrase` and HTTP
 * handler header values are secrets. The console token is a `Secret`, which serialises as `***`
 * by itself.
 */
import { MASK } from './secret';
import type { ResolvedConfig } from './types';

export { MASK };

/**
 * Replaces the password in a URL with `***`, keeping scheme, user, host, port and vhost:
 * `amqp://app:s3cret@mq:5672/prod` → `amqp://app:***@mq:5672/prod`.
 *
 * Works on the text rather than through `URL`, which would re-encode the rest and throws on
 * the malformed input that most needs safe logging. The userinfo ends at the last `@`, so a
 * password with an unencoded `@` or `/` is still hidden; a malformed URL is over-redacted
 * rather than leaked.
 *
 * @param url - any string; returned unchanged when it holds no `user:password@`
 */
export function redactUrl(url: string): string {
  const schemeEnd = url.indexOf('://');
  const start = schemeEnd === -1 ? 0 : schemeEnd + 3;
  const at = url.lastIndexOf('@');
  if (at < start) return url;
  const colon = url.indexOf(':', start);
  if (colon === -1 || colon > at) return url;
  return `${url.slice(0, colon + 1)}${MASK}${url.slice(at)}`;
}

/** The parts of the JSON copy that redaction rewrites. */
interface Redactable {
  amqp: { urls: string[]; tls: { passphrase: string | null }; management: { url: string | null } };
  lanes: { httpHandler: { url: string; headers: Record<string, unknown> } | null }[];
}

/**
 * A plain, JSON-serialisable copy of the configuration for logging and printing, with every
 * secret masked: passwords in AMQP, management and HTTP handler URLs, `amqp.tls.passphrase` when set, and
 * every HTTP handler header value (names stay, so one can see which are sent). The copy is
 * not frozen: callers may decorate it.
 */
export function redactConfig(cfg: ResolvedConfig): unknown {
  const copy = JSON.parse(JSON.stringify(cfg)) as Redactable;
  copy.amqp.urls = copy.amqp.urls.map(redactUrl);
  if (copy.amqp.tls.passphrase !== null) copy.amqp.tls.passphrase = MASK;
  if (copy.amqp.management.url !== null) copy.amqp.management.url = redactUrl(copy.amqp.management.url);
  for (const lane of copy.lanes) {
    const http = lane.httpHandler;
    if (http === null) continue;
    http.url = redactUrl(http.url);
    for (const name of Object.keys(http.headers)) http.headers[name] = MASK;
  }
  return copy;
}
