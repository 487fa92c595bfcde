/**
 * A rung the broker does not answer (a quorum rung back from a crash without a leader): the
 * publisher sends its messages to the next rung up instead of failing them for as long as
 * the rung stays sick. Later by one rung step, never earlier; other failures are not detoured.
 * A rung that answers its declare but confirms nothing (one that cannot commit) is detoured
 * the same way once its publish times out.
 */
import pino from 'pino';
import type { ConfirmedPublisher } from '../../src/amqp/confirmed-publisher';
import { RUNG_UNANSWERED } from '../../src/amqp/rung-declarer';
import { allowedLatenessMs, ladderRungs, rungIndex } from '../../src/delay/ladder';
import { BrokerError, PublishError } from '../../src/errors';
import type { OutgoingMessage } from '../../src/message/types';
import { names } from '../../src/naming/names';
import { MessagePublisher } from '../../src/publish/message-publisher';
import { testConfig } from '../helpers/broker';

const NS = 'unit-detour';
const n = names(NS);

function publisherWith(config: ReturnType<typeof testConfig>, sick: (queue: string) => Error | undefined) {
  const sent: { routingKey: string; cc: readonly string[] | undefined }[] = [];
  const fake = {
    publish(_exchange: string, routingKey: string, _body: Buffer, options: { CC?: string[] }): Promise<void> {
      sent.push({ routingKey, cc: options.CC });
      return Promise.resolve();
    },
  } as unknown as ConfirmedPublisher;
  const asked: string[] = [];
  const rungs = {
    ensure: (queue: string) => {
      asked.push(queue);
      const err = sick(queue);
      return err ? Promise.reject(err) : undefined;
    },
    forget: () => undefined,
  };
  const { detours, observer } = recordingObserver();
  const logged: { msg: string; from?: string; to?: string; code?: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
  return { sent, asked, detours, logged, mp: new MessagePublisher(fake, n, config.delay, config.lanes, rungs, { observer, logger }) };
}

/** A publisher whose publishes to `sickQueue` fail with `failure()` (the rung answered its declare). */
function failingAt(config: ReturnType<typeof testConfig>, sickQueue: string, failure: () => Error) {
  const sent: string[] = [];
  const fake = {
    publish(_exchange: string, routingKey: string): Promise<void> {
      sent.push(routingKey);
      return routingKey === sickQueue ? Promise.reject(failure()) : Promise.resolve();
    },
  } as unknown as ConfirmedPublisher;
  const rungs = { ensure: () => undefined, forget: () => undefined };
  const { detours, observer } = recordingObserver();
  return { sent, detours, mp: new MessagePublisher(fake, n, config.delay, config.lanes, rungs, { observer }) };
}

/** An observer that records every detour the publisher reports (orbit_rung_detours_total). */
function recordingObserver() {
  const detours: { from: string; to: string; code: string }[] = [];
  const observer = { published: () => undefined, detoured: (from: string, to: string, code: string) => void detours.push({ from, to, code }) };
  return { detours, observer };
}

function outgoing(delayMs: number, priority = 0): OutgoingMessage {
  const now = Date.now();
  return { id: 'm1', lane: 'b', body: Buffer.from('{}'), priority, dueAt: now + delayMs, delayMs, runs: 0, attempt: 0, generation: 0, headers: {} };
}

const unanswered = (queue: string) => new BrokerError(`rung ${queue} did not answer`, { code: RUNG_UNANSWERED });

describe.each(['classic', 'quorum'] as const)('a sick rung on %s delay queues', (queueType) => {
  const config = testConfig(NS, { delay: { unit: '1s', tolerance: '2%', queueType }, lanes: [{ name: 'b' }] });
  const ladder = ladderRungs(0.02, 2 ** config.delay.levels - 1);
  const rungMs = (delayMs: number, step = 0) => ladder[rungIndex(ladder, Math.ceil(delayMs / 1000)) + step]! * 1000;

  test.each([1_000, 3_600_000, 86_400_000])('a message for a sick rung (delay %d ms) waits in the next one up, late by one rung step at most', async (delayMs) => {
    const sickQueue = n.rung(rungMs(delayMs), false);
    const { sent, detours, logged, mp } = publisherWith(config, (q) => (q === sickQueue ? unanswered(q) : undefined));
    await mp.schedule(outgoing(delayMs));
    expect(sent).toEqual([{ routingKey: n.rung(rungMs(delayMs, 1), false), cc: [n.toDestination('b')] }]);
    // Told to the observer (orbit_rung_detours_total) and logged at debug, with the rung's failure.
    const detour = { from: sickQueue, to: n.rung(rungMs(delayMs, 1), false), code: RUNG_UNANSWERED };
    expect(detours).toEqual([detour]);
    expect(logged).toMatchObject([{ msg: 'rung did not take a publish; sent to the rung above', ...detour }]);
    // Never early; the one step costs at most one more of the ladder's rounding (τ/2 × delay, or a unit).
    const late = rungMs(delayMs, 1) - delayMs;
    expect(late).toBeGreaterThan(0);
    expect(late).toBeLessThanOrEqual(allowedLatenessMs(delayMs, 0.02, 1000) + Math.max(1000, 0.01 * rungMs(delayMs, 1)));
  });

  test('sick rungs in a row: up to three detours, then the publish fails with the rung\'s error', async () => {
    const d = 600_000;
    const sick = new Set([0, 1, 2].map((s) => n.rung(rungMs(d, s), false)));
    const a = publisherWith(config, (q) => (sick.has(q) ? unanswered(q) : undefined));
    await a.mp.schedule(outgoing(d));
    expect(a.sent.map((s) => s.routingKey)).toEqual([n.rung(rungMs(d, 3), false)]);
    sick.add(n.rung(rungMs(d, 3), false));
    const b = publisherWith(config, (q) => (sick.has(q) ? unanswered(q) : undefined));
    await expect(b.mp.schedule(outgoing(d))).rejects.toMatchObject({ code: RUNG_UNANSWERED });
    expect(b.sent).toEqual([]);
    expect(b.asked).toHaveLength(4);
  });

  test('another failure (the connection is gone) is not detoured', async () => {
    const { sent, asked, mp } = publisherWith(config, () => new BrokerError('not connected', { code: 'NOT_CONNECTED' }));
    await expect(mp.schedule(outgoing(60_000))).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
    expect(asked).toHaveLength(1);
    expect(sent).toEqual([]);
  });

  test('a rung that leaves a publish unconfirmed: the message goes to the next rung up', async () => {
    const d = 60_000;
    const sickQueue = n.rung(rungMs(d), false);
    const { sent, detours, mp } = failingAt(config, sickQueue, () => new PublishError('no confirm within 5000 ms', { code: 'CONFIRM_TIMEOUT' }));
    await mp.schedule(outgoing(d));
    expect(sent).toEqual([sickQueue, n.rung(rungMs(d, 1), false)]);
    expect(detours.map((d) => d.code)).toEqual(['CONFIRM_TIMEOUT']);
    // Not marked: the next message tries its rung again (right after a restart a healthy rung can be slow to confirm).
    await mp.schedule(outgoing(d));
    expect(sent.slice(2)).toEqual([sickQueue, n.rung(rungMs(d, 1), false)]);
  });

  test('a rung that refuses a publish (a nack): the message goes to the next rung up; a closed channel is not detoured', async () => {
    const d = 60_000;
    const sickQueue = n.rung(rungMs(d), false);
    let failure = (): PublishError => new PublishError('broker refused the message (nack)', { code: 'NACKED' });
    const { sent, detours, mp } = failingAt(config, sickQueue, () => failure());
    await mp.schedule(outgoing(d));
    expect(sent).toEqual([sickQueue, n.rung(rungMs(d, 1), false)]);
    failure = () => new PublishError('channel closed before the broker confirmed the message', { code: 'CHANNEL_CLOSED' });
    await expect(mp.schedule(outgoing(d))).rejects.toMatchObject({ code: 'CHANNEL_CLOSED' });
    expect(sent.slice(2)).toEqual([sickQueue]);
    expect(detours.map((d) => d.code)).toEqual(['NACKED']);
  });

  test('a high-priority message keeps to its kind of rung', async () => {
    const d = 120_000;
    const high = queueType === 'quorum';
    const sickQueue = n.rung(rungMs(d), high);
    const { sent, mp } = publisherWith(config, (q) => (q === sickQueue ? unanswered(q) : undefined));
    await mp.schedule(outgoing(d, 9));
    expect(sent.map((s) => s.routingKey)).toEqual([n.rung(rungMs(d, 1), high)]);
  });
});
