import { redactUrl } from '../config/redact';
import { formatDuration } from '../config/durations';
import { BrokerError, BrokerRefusedError, errorMessage } from '../errors';

/**
 * amqplib's text for a `connection.close` the broker sends during the handshake, before
 * `connection.open` (a refused login): `Handshake terminated by server: 403 (ACCESS-REFUSED)
 * with message "ACCESS_REFUSED - Login was refused …"`.
 */
const HANDSHAKE_CLOSED = /^Handshake terminated by server: (\d+) \(([A-Z-]+)\)(?: with message "([\s\S]*)")?$/;

/**
 * amqplib's text when the broker answers `connection.open` (the vhost) with
 * `connection.close` 530 NOT_ALLOWED: `Expected ConnectionOpenOk; got <ConnectionClose
 * channel:0>`. amqplib drops the close's reply code and text here, so the reason given is
 * what RabbitMQ means by it: the vhost does not exist, or the user may not use it.
 */
const OPEN_CLOSED = /^Expected ConnectionOpenOk; got <ConnectionClose\b/;

const ACCESS_REFUSED = 403;
const NOT_ALLOWED = 530;

/**
 * The one place orbit reads amqplib's connect-error text. Maps a failed connect to the
 * refusal it is — the login (ACCESS_REFUSED) or the vhost (VHOST_NOT_ALLOWED) — keeping the
 * broker's reason and the original error as `cause`; undefined for anything else (a
 * network error, a timeout, a broker going down mid-handshake), which a retry may heal.
 *
 * @param url - the URL that was tried; shown without its password
 */
export function connectRefusal(err: unknown, url: string | undefined): BrokerRefusedError | undefined {
  const text = errorMessage(err);
  const broker = url === undefined ? 'the broker' : `the broker at ${redactUrl(url)}`;
  const handshake = HANDSHAKE_CLOSED.exec(text);
  if (handshake) {
    const replyCode = Number(handshake[1]);
    const reason = handshake[3] ?? handshake[2]!;
    if (replyCode === ACCESS_REFUSED) {
      return new BrokerRefusedError('ACCESS_REFUSED', `${broker} refused the login (check the user and password in the AMQP URL): ${reason}`, { cause: err });
    }
    if (replyCode === NOT_ALLOWED) return vhostRefused(broker, url, reason, err);
    return undefined;
  }
  if (OPEN_CLOSED.test(text)) return vhostRefused(broker, url, undefined, err);
  return undefined;
}

function vhostRefused(broker: string, url: string | undefined, reason: string | undefined, cause: unknown): BrokerRefusedError {
  const vhost = url === undefined ? undefined : vhostOf(url);
  const which = vhost === undefined ? 'the vhost' : `vhost ${JSON.stringify(vhost)}`;
  const why = reason ?? `NOT_ALLOWED - ${which} does not exist or the user has no access to it`;
  return new BrokerRefusedError('VHOST_NOT_ALLOWED', `${broker} refused ${which} (check the vhost, the path of the AMQP URL, and the user's permissions): ${why}`, { cause });
}

/** The vhost an AMQP URL names: its path, decoded; `/` when it has none. */
export function vhostOf(url: string): string | undefined {
  try {
    const path = new URL(url).pathname;
    return path === '' || path === '/' ? '/' : decodeURIComponent(path.slice(1));
  } catch {
    return undefined;
  }
}

/**
 * No connection within `amqp.connectTimeout`: names every broker tried (passwords
 * redacted) and the last error, so "wrong host" and "broker down" read differently.
 */
export function notConnected(urls: readonly string[], timeoutMs: number, last: { err: unknown; url: string | undefined } | undefined): BrokerError {
  const brokers = urls.map(redactUrl).join(', ');
  const lastText = last === undefined ? 'no attempt finished' : `last error${last.url === undefined ? '' : ` (${redactUrl(last.url)})`}: ${errorMessage(last.err)}`;
  return new BrokerError(`cannot connect to the broker at ${brokers} within ${formatDuration(timeoutMs)} (amqp.connectTimeout); ${lastText}`, {
    code: 'NOT_CONNECTED',
    cause: last?.err,
  });
}
