import { connect, type AmqpConnectionManager } from 'amqp-connection-manager';
import { readFileSync } from 'node:fs';
import type { AmqpConfig, TlsConfig } from '../config/types';
import { redactUrl } from '../config/redact';
import type { Logger } from '../logging/logger';
import { coalesceWrites, socketOfConnection } from './coalesce-writes';

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
 * A named, reconnecting connection (round-robin over `amqp.urls`). Only this module and
 * the other files in `amqp/` touch amqplib or amqp-connection-manager.
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
  manager.on('connect', ({ connection, url }) => {
    const socket = socketOfConnection(connection);
    // Without it orbit still works, one syscall per frame group: say so once per connect.
    if (!socket || !coalesceWrites(socket)) log.warn('socket writes not coalesced: amqplib internals changed');
    log.info({ broker: typeof url === 'string' ? redactUrl(url) : undefined }, 'amqp connected');
    events.onConnect?.();
  });
  manager.on('connectFailed', ({ err, url }) => {
    log.warn({ broker: typeof url === 'string' ? redactUrl(url) : undefined, err: err.message }, 'amqp connect failed');
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
