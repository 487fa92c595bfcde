/**
 * A connection close the broker does not answer. orbit waits a bounded time for the close-ok
 * and then cuts the socket (amqp/connection.ts). amqplib must hear of that cut: before, it
 * kept the connection open with its heartbeat timers running, so a stopped daemon's process
 * stayed up to two heartbeats longer (seen as jest's "did not exit" after sick-rung.test.ts).
 *
 * The broker is real (the shared node); its close-ok goes unread because the client stops
 * reading from the socket, which is what a broker that never answers looks like from here.
 */
import type { ChannelModel } from 'amqplib';
import type { EventEmitter } from 'node:events';
import { closeConnection, connectionName, openConnection } from '../../src/amqp/connection';
import { socketOfConnection } from '../../src/amqp/coalesce-writes';
import { UNANSWERED, answeredWithin } from '../../src/amqp/within';
import { silentLogger } from '../../src/logging/logger';
import { randomNamespace, testConfig } from '../helpers/broker';
import { timerFloorMs, waitFor } from '../helpers/wait';

test('a close the broker does not answer is cut after the bound, and the client lets go of the connection at once, not at a heartbeat timeout', async () => {
  const HEARTBEAT_S = 10;
  const BOUND_MS = 500;
  const config = testConfig(randomNamespace('fclose'), { amqp: { heartbeat: `${HEARTBEAT_S}s` } });
  const manager = openConnection(config.amqp, connectionName(config.namespace, 'cli'), silentLogger());
  await waitFor(() => manager.connection !== undefined, 10_000, 'the connection');
  const model = manager.connection as unknown as ChannelModel;
  // On amqplib's connection, not the channel model: the manager's close removes the model's 'close' listeners.
  const closed = new Promise<unknown>((resolve) => (model.connection as unknown as EventEmitter).once('close', resolve));
  const socket = socketOfConnection(model);
  expect(socket).toBeDefined();
  // amqplib reads on 'readable': without its listener the broker's close-ok is never read.
  socket!.removeAllListeners('readable');

  const began = Date.now();
  expect(await closeConnection(manager, BOUND_MS)).toBe(false);
  expect(Date.now() - began).toBeGreaterThanOrEqual(timerFloorMs(BOUND_MS));
  // Before the fix amqplib saw no end of the socket: its connection closed only when the
  // heartbeat timed out (about two heartbeats, 20 s here).
  expect(await answeredWithin(closed, 2000)).not.toBe(UNANSWERED);
});
