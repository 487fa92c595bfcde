import { connect, type AmqpConnectionManager } from 'amqp-connection-manager';
import { readFileSync } from 'node:fs';
import type { AmqpConfig, TlsConfig } from '../config/types';
import { redactUrl } from '../config/redact';
import type { Logger } from '../logging/logger';
import { coalesceWrites, socketOfConnection } from './coalesce-writes';
import { connectRefusal, notConnected } from './connect-error';
import { UNANSWERED, answeredWithin } from './within';
import { BrokerError, type BrokerRefusedError } from '../errors';

/** Which of orbit's connections this is; consuming and publishing never share one. */
export type ConnectionRole = 'consume' | 'publish' | 'cli';

/**
 * Socket options for `amqps://` URLs: CA, client certificate and key read from the
 * configured files when the connection manager is created (a restart picks up rotated files).
 */
export function tlsOptions(tls: TlsConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (tls.caFile) out.ca = [readFileSync(tls.caFile)];
  if (tls.certFile) out.cert = readFileSync(tls.certFile);
  if (tls.keyFile) out.key = readFileSync(tls.keyFile);
  if (tls.passphrase) out.passphrase = tls.passphrase;
  if (tls.servername) out.servername = tls.servername;
  out.rejectUnauthorized = tls.rejectUnauthorized;
  return out;
}

/** Name shown by the broker (`rabbitmqctl list_connections name client_properties`). */
export function connectionName(namespace: string, role: ConnectionRole): string {
  return `orbit:${namespace}:${role}`;
}

export interface ConnectionEvents {
  onConnect?: () => void;
  onDisconnect?: (err: Error | undefined) => void;
  onBlocked?: (reason: string) => void;
  onUnblocked?: () => void;
}

/**
 * A named, reconnecting connection (round-robin over `amqp.urls`). Only `amqp/` imports
 * amqplib and amqp-connection-manager for their code (connecting, opening channels); the
 * layers above work on the channels and messages handed to them and import the libraries'
 * types only — `.dependency-cruiser.cjs` checks it on every `npm test`.
 */
export function openConnection(
  amqp: AmqpConfig,
  name: string,
  logger: Logger,
  events: ConnectionEvents = {},
): AmqpConnectionManager {
  const manager = connect([...amqp.urls], {
    heartbeatIntervalInSeconds: amqp.heartbeatSeconds,
    reconnectTimeInSeconds: amqp.reconnectMs / 1000,
    connectionOptions: {
      // Small frames (acks, basic.get) must not wait ~40 ms for Nagle + delayed ACK.
      noDelay: true,
      clientProperties: { connection_name: name, product: 'orbit' },
      ...tlsOptions(amqp.tls),
    },
  });
  const log = logger.child({ connection: name });
  const state: ConnectState = { urls: amqp.urls, connectedOnce: false, last: undefined, refusal: undefined };
  states.set(manager, state);
  manager.on('connect', ({ connection, url }) => {
    state.connectedOnce = true;
    state.refusal = undefined;
    const socket = socketOfConnection(connection);
    // Without it orbit still works, one syscall per frame group: say so once per connect.
    if (!socket || !coalesceWrites(socket)) log.warn('socket writes not coalesced: amqplib internals changed');
    log.info({ broker: typeof url === 'string' ? redactUrl(url) : undefined }, 'amqp connected');
    events.onConnect?.();
  });
  manager.on('connectFailed', ({ err, url }) => {
    const tried = typeof url === 'string' ? url : undefined;
    state.last = { err, url: tried };
    const refusal = connectRefusal(err, tried);
    if (refusal === undefined) {
      log.warn({ broker: tried === undefined ? undefined : redactUrl(tried), err: err.message }, 'amqp connect failed');
      return;
    }
    // Before the first connect a refusal is final (`awaitFirstConnect` fails at once). After
    // it, the same refusal means the credentials or permissions changed under a running
    // daemon: say so loudly with the broker's reason, but keep retrying, since they may be
    // rotated back or granted again without a restart.
    if (!state.connectedOnce) state.refusal ??= refusal;
    log.error({ broker: tried === undefined ? undefined : redactUrl(tried), code: refusal.code, err: refusal.message }, 'amqp connect refused by the broker');
  });
  manager.on('disconnect', ({ err }) => {
    log.warn({ err: err?.message }, 'amqp disconnected');
    events.onDisconnect?.(err);
  });
  manager.on('blocked', ({ reason }) => {
    log.warn({ reason }, 'amqp connection blocked by broker');
    events.onBlocked?.(reason);
  });
  manager.on('unblocked', () => {
    log.info('amqp connection unblocked');
    events.onUnblocked?.();
  });
  return manager;
}

/** What `awaitFirstConnect` needs to know about a connection opened by `openConnection`. */
interface ConnectState {
  readonly urls: readonly string[];
  connectedOnce: boolean;
  last: { err: unknown; url: string | undefined } | undefined;
  /** The first refusal before any connect: final for whoever awaits the first connect. */
  refusal: BrokerRefusedError | undefined;
}

/** Kept beside the manager rather than on it: amqp-connection-manager's object is not ours. */
const states = new WeakMap<AmqpConnectionManager, ConnectState>();

/**
 * Resolves once `manager` (from `openConnection`) has connected at least once. Rejects at
 * once when the broker refuses the login or vhost before that (retrying cannot heal it), and
 * after `timeoutMs` with NOT_CONNECTED naming the brokers and the last error while they are
 * unreachable. The manager goes on retrying either way: the caller closes it.
 */
export function awaitFirstConnect(manager: AmqpConnectionManager, timeoutMs: number): Promise<void> {
  const state = states.get(manager);
  if (state === undefined || state.connectedOnce || manager.isConnected()) return Promise.resolve();
  if (state.refusal) return Promise.reject(state.refusal);
  return new Promise<void>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      manager.removeListener('connect', onConnect);
      manager.removeListener('connectFailed', onFailed);
    };
    const onConnect = (): void => {
      done();
      resolve();
    };
    // Registered after openConnection's own listener, so `state.refusal` is already set.
    const onFailed = (): void => {
      if (state.refusal === undefined) return;
      done();
      reject(state.refusal);
    };
    const timer = setTimeout(() => {
      done();
      reject(notConnected(state.urls, timeoutMs, state.last));
    }, timeoutMs);
    manager.on('connect', onConnect);
    manager.on('connectFailed', onFailed);
  });
}

/**
 * Closes `manager`, waiting up to `timeoutMs` for the broker's close-ok; past that the socket
 * is destroyed (the broker then ends the connection as a lost client: what is unacked on it
 * goes back to its queues). A broker that does not answer must not hold a shutdown forever.
 * @returns false when the close had to be forced
 */
export async function closeConnection(manager: AmqpConnectionManager, timeoutMs: number, logger?: Logger): Promise<boolean> {
  const socket = socketOfConnection(manager.connection);
  const closed = await answeredWithin(manager.close().catch(() => undefined), timeoutMs);
  if (closed !== UNANSWERED) return true;
  // With an error: amqplib hears of a socket's end only through 'error' or 'end', and a plain
  // destroy() emits neither. It would keep the connection open, its heartbeat timers holding
  // the process up to two heartbeats after the stop, and the channels' calls pending.
  socket?.destroy(new BrokerError(`orbit closed the socket: no close-ok within ${timeoutMs} ms`));
  logger?.warn({ ms: timeoutMs }, 'broker did not confirm the connection close in time; the socket was closed');
  return false;
}
