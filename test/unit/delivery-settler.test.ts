/**
 * The ack-after-confirm rule without a broker: a fake channel records acks (and would record
 * nacks), a fake publisher confirms replacements when the test says so, and a fake channel
 * manager says whether the delivering channel is still the live one.
 */
import type { Message as AmqpMessage } from 'amqplib';
import { silentLogger } from '../../src/logging/logger';
import type { Settlement } from '../../src/worker/decide-outcome';
import type { Settle } from '../../src/publish/bundler';
import { DeliverySettler, type Delivery } from '../../src/worker/delivery-settler';
import type { IncomingMessage } from '../../src/worker/incoming';

type Event = string;

function amqpDelivery(tag: number): AmqpMessage {
  return { fields: { deliveryTag: tag } } as unknown as AmqpMessage;
}

function incoming(id: string): IncomingMessage {
  return { message: { id }, stored: { id }, decision: {}, badBody: undefined } as unknown as IncomingMessage;
}

const rescheduled: Settlement = { kind: 'rescheduled', message: {} as Extract<Settlement, { kind: 'rescheduled' }>['message'] };
const retried: Settlement = { kind: 'retried', message: {} as Extract<Settlement, { kind: 'retried' }>['message'] };
const done: Settlement = { kind: 'done' };
const dead: Settlement = { kind: 'dead', info: { code: 'HANDLER_ERROR', message: 'boom' } as Extract<Settlement, { kind: 'dead' }>['info'] };

/** A channel as the settler sees it; `nack` is there to prove it is never called. */
function fakeChannel(events: Event[], name = 'ch') {
  return {
    ack: jest.fn((m: AmqpMessage, allUpTo?: boolean) => void events.push(`${name} ack ${m.fields.deliveryTag}${allUpTo ? ' multiple' : ''}`)),
    nack: jest.fn(() => void events.push(`${name} nack`)),
  };
}

/** Replacements confirmed (or refused) when the test resolves them, in publish order. */
function fakePublisher(events: Event[]) {
  const pending: Array<{ confirm(): void; refuse(err: Error): void }> = [];
  const publish = (what: string) => (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      events.push(`publish ${what}`);
      pending.push({
        confirm: () => {
          events.push(`confirm ${what}`);
          resolve();
        },
        refuse: reject,
      });
    });
  const schedule = jest.fn(publish('schedule'));
  // The publisher's callback form (what the settler uses first): the same publish, answered through `settle`.
  const scheduleWith = jest.fn((msg: unknown, settle: Settle, token: number, kind: unknown) => {
    (schedule as unknown as (m: unknown, k: unknown) => Promise<void>)(msg, kind).then(
      () => settle(token, true),
      (err: unknown) => settle(token, false, err),
    );
  });
  return { pending, schedule, scheduleWith, deadLetter: jest.fn(publish('dead letter')) };
}

function setup() {
  const events: Event[] = [];
  const publisher = fakePublisher(events);
  const channel = fakeChannel(events);
  let live: unknown = channel;
  const source = { isCurrent: (ch: unknown) => ch === live };
  const observer = {
    messageSettled: jest.fn((_lane: string, kind: string) => void events.push(`settled ${kind}`)),
    settleFailed: jest.fn(() => void events.push('settle failed')),
  };
  const logger = silentLogger();
  const settler = new DeliverySettler({ lane: 'a', publisher, logger, observer });
  const delivery = (tag: number, early = false, ch = channel): Delivery => ({ raw: amqpDelivery(tag), channel: ch, source, early });
  /** Settles every message of `d` with `settlement`; resolves once the delivery is settled. */
  const settle = (d: Delivery, settlement: Settlement, messages = [incoming(`m${d.raw.fields.deliveryTag}`)]): Promise<void> =>
    new Promise<void>((resolve) => {
      const settling = settler.begin(d, messages, { messageEnded: () => undefined, deliveryEnded: () => resolve() });
      messages.forEach((_, i) => settler.replace(settlement, settling, i));
    });
  /** Receives a consume-channel delivery and settles `messages` of it with `settlement`. */
  const run = (d: Delivery, settlement: Settlement, messages = [incoming(`m${d.raw.fields.deliveryTag}`)]): Promise<void> => {
    if (!d.early) settler.received(d.raw, d.channel);
    return settle(d, settlement, messages);
  };
  return {
    events,
    publisher,
    channel,
    settler,
    observer,
    logger,
    delivery,
    run,
    settle,
    closeChannel: () => (live = undefined),
    newChannel: (name: string) => (live = fakeChannel(events, name)) as ReturnType<typeof fakeChannel>,
  };
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('DeliverySettler: ack after confirm', () => {
  test('no ack before the replacement is confirmed; then confirm, settled, ack — in that order', async () => {
    const t = setup();
    const settling = t.run(t.delivery(1), rescheduled);
    await nextTurn();
    await nextTurn();
    expect(t.events).toEqual(['publish schedule']);
    expect(t.publisher.schedule).toHaveBeenCalledWith({}, 'reschedule');
    t.publisher.pending[0]!.confirm();
    await settling;
    await nextTurn();
    expect(t.events).toEqual(['publish schedule', 'confirm schedule', 'settled rescheduled', 'ch ack 1 multiple']);
  });

  test('a retry is published as one, and a dead letter carries the stored message and its reason', async () => {
    const t = setup();
    const a = t.run(t.delivery(1), retried);
    const b = t.run(t.delivery(2), dead);
    await nextTurn();
    expect(t.publisher.schedule).toHaveBeenCalledWith({}, 'retry');
    expect(t.publisher.deadLetter).toHaveBeenCalledWith({ id: 'm2' }, (dead as Extract<Settlement, { kind: 'dead' }>).info, expect.any(Number));
    t.publisher.pending.forEach((p) => p.confirm());
    await Promise.all([a, b]);
    await nextTurn();
    expect(t.events.filter((e) => e.includes('ack'))).toEqual(['ch ack 2 multiple']);
    expect(t.observer.messageSettled.mock.calls.map((c) => c[1])).toEqual(['retried', 'dead']);
  });

  test('done needs no replacement: acked at the end of the turn, nothing published', async () => {
    const t = setup();
    await t.run(t.delivery(1), done);
    expect(t.channel.ack).not.toHaveBeenCalled();
    await nextTurn();
    expect(t.events).toEqual(['settled done', 'ch ack 1 multiple']);
  });

  test('a bundle is acked once, only after the last of its replacements is confirmed', async () => {
    const t = setup();
    const settling = t.run(t.delivery(1), rescheduled, [incoming('x'), incoming('y'), incoming('z')]);
    await nextTurn();
    expect(t.publisher.pending).toHaveLength(3);
    t.publisher.pending[2]!.confirm();
    t.publisher.pending[0]!.confirm();
    await nextTurn();
    await nextTurn();
    expect(t.channel.ack).not.toHaveBeenCalled();
    t.publisher.pending[1]!.confirm();
    await settling;
    await nextTurn();
    expect(t.channel.ack).toHaveBeenCalledTimes(1);
    expect(t.events.at(-1)).toBe('ch ack 1 multiple');
  });

  test('one replacement of a bundle not confirmed: the whole delivery stays unacked — no ack, no nack', async () => {
    const t = setup();
    const settling = t.run(t.delivery(1), rescheduled, [incoming('x'), incoming('y')]);
    await nextTurn();
    t.publisher.pending[0]!.confirm();
    t.closeChannel(); // the broker requeues the bundle
    t.publisher.pending[1]!.refuse(new Error('channel closed'));
    await settling;
    await nextTurn();
    expect(t.channel.ack).not.toHaveBeenCalled();
    expect(t.channel.nack).not.toHaveBeenCalled();
    expect(t.observer.settleFailed).toHaveBeenCalledTimes(1);
    expect(t.observer.messageSettled).toHaveBeenCalledTimes(1); // x's replacement was confirmed
  });

  test('a refused replacement is published again after a backoff while the channel lives; the ack follows the confirm', async () => {
    const t = setup();
    const warn = jest.spyOn(t.logger, 'warn');
    const settling = t.run(t.delivery(1), rescheduled);
    await nextTurn();
    t.publisher.pending[0]!.refuse(new Error('nack'));
    await new Promise((r) => setTimeout(r, 150)); // the first backoff is 100 ms
    expect(t.publisher.schedule).toHaveBeenCalledTimes(2);
    expect(t.channel.ack).not.toHaveBeenCalled();
    t.publisher.pending[1]!.confirm();
    await settling;
    await nextTurn();
    expect(t.events).toEqual(['publish schedule', 'settle failed', 'publish schedule', 'confirm schedule', 'settled rescheduled', 'ch ack 1 multiple']);
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ id: 'm1', retryInMs: 100 }), 'replacement not confirmed; retrying');
  });

  test('a replacement refused with no error at all (a rejection with undefined) still waits out the backoff before its next try', async () => {
    const t = setup();
    const settling = t.run(t.delivery(1), rescheduled);
    await nextTurn();
    (t.publisher.pending[0]!.refuse as (err?: unknown) => void)(undefined);
    await nextTurn();
    await nextTurn();
    expect(t.observer.settleFailed).toHaveBeenCalledTimes(1);
    expect(t.publisher.schedule).toHaveBeenCalledTimes(1); // not at once: the backoff first
    await new Promise((r) => setTimeout(r, 150)); // the first backoff is 100 ms
    expect(t.publisher.schedule).toHaveBeenCalledTimes(2);
    t.publisher.pending[1]!.confirm();
    await settling;
    await nextTurn();
    expect(t.events).toEqual(['publish schedule', 'settle failed', 'publish schedule', 'confirm schedule', 'settled rescheduled', 'ch ack 1 multiple']);
  });

  test('publish fails and the delivering channel has closed: given up, the original left unacked for redelivery', async () => {
    const t = setup();
    const warn = jest.spyOn(t.logger, 'warn');
    const settling = t.run(t.delivery(1), rescheduled);
    await nextTurn();
    t.closeChannel();
    t.publisher.pending[0]!.refuse(new Error('connection lost'));
    await settling;
    await nextTurn();
    expect(t.publisher.schedule).toHaveBeenCalledTimes(1);
    expect(t.channel.ack).not.toHaveBeenCalled();
    expect(t.channel.nack).not.toHaveBeenCalled();
    expect(t.observer.messageSettled).not.toHaveBeenCalled();
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ id: 'm1' }), 'replacement not confirmed; original left unacked for redelivery');
  });

  test('shutdown: a refused replacement is not retried past the deadline; the original stays unacked', async () => {
    const t = setup();
    t.settler.giveUpAfter(Date.now() + 50); // less than the first backoff
    const settling = t.run(t.delivery(1), rescheduled);
    await nextTurn();
    t.publisher.pending[0]!.refuse(new Error('nack'));
    await settling;
    await nextTurn();
    expect(t.publisher.schedule).toHaveBeenCalledTimes(1);
    expect(t.channel.ack).not.toHaveBeenCalled();
  });

  test('the delivering channel closed while the handler ran: the replacement is not published (no second live copy)', async () => {
    const t = setup();
    const d = t.delivery(1);
    t.settler.received(d.raw, d.channel);
    t.closeChannel();
    await t.settle(d, rescheduled, [incoming('m1')]);
    await nextTurn();
    expect(t.publisher.schedule).not.toHaveBeenCalled();
    expect(t.channel.ack).not.toHaveBeenCalled();
  });

  test('confirmed, but the channel closed before the ack: nothing is acked (the broker already requeued it)', async () => {
    const t = setup();
    const settling = t.run(t.delivery(1), rescheduled);
    await nextTurn();
    t.closeChannel();
    t.publisher.pending[0]!.confirm();
    await settling;
    await nextTurn();
    expect(t.channel.ack).not.toHaveBeenCalled();
  });
});

describe('SettlingDelivery: one delivery on its way to its ack', () => {
  test('each message ends once, saying whether its handler started; the delivery ends after the last, acked only if all were ok', async () => {
    const t = setup();
    const d = t.delivery(1);
    t.settler.received(d.raw, d.channel);
    const ended: string[] = [];
    const settling = t.settler.begin(d, [incoming('x'), incoming('y')], {
      messageEnded: (_d, started) => void ended.push(`message ${started ? 'started' : 'not started'}`),
      deliveryEnded: () => void ended.push('delivery'),
    });
    settling.started(0);
    settling.settled(0, true);
    settling.settled(0, false); // a second settling (an unexpected error after it settled) changes nothing
    expect(ended).toEqual(['message started']);
    settling.settled(1, true);
    expect(ended).toEqual(['message started', 'message not started', 'delivery']);
    await nextTurn();
    expect(t.channel.ack).toHaveBeenCalledTimes(1);
  });

  test('a bundle of no messages is settled (and acked) at once', async () => {
    const t = setup();
    const d = t.delivery(1);
    t.settler.received(d.raw, d.channel);
    const deliveryEnded = jest.fn();
    t.settler.begin(d, [], { messageEnded: () => undefined, deliveryEnded });
    expect(deliveryEnded).toHaveBeenCalledTimes(1);
    await nextTurn();
    expect(t.channel.ack).toHaveBeenCalledTimes(1);
  });

  test('a replacement the publisher refuses synchronously (before sending) is tried again with backoff, not dropped', async () => {
    const t = setup();
    t.publisher.scheduleWith.mockImplementationOnce(() => {
      throw new Error('delay out of range');
    });
    const settling = t.run(t.delivery(1), rescheduled);
    await nextTurn();
    expect(t.events).toEqual(['settle failed']);
    await new Promise((r) => setTimeout(r, 150)); // the first backoff is 100 ms
    expect(t.publisher.schedule).toHaveBeenCalledTimes(1);
    t.publisher.pending[0]!.confirm();
    await settling;
    await nextTurn();
    expect(t.events).toEqual(['settle failed', 'publish schedule', 'confirm schedule', 'settled rescheduled', 'ch ack 1 multiple']);
  });
});

describe('DeliverySettler: acks on the consume channel', () => {
  test('acks of one turn are coalesced: the settled front as one multiple ack, stopped at an unsettled delivery; the rest singly, in settling order', async () => {
    const t = setup();
    const ds = [1, 2, 3, 4].map((tag) => t.delivery(tag));
    ds.forEach((d) => t.settler.received(d.raw, d.channel));
    const settle = (d: Delivery, s: Settlement) => t.settle(d, s, [incoming('m')]);
    const slow = settle(ds[1]!, rescheduled); // 2 waits for its confirm
    await Promise.all([settle(ds[3]!, done), settle(ds[0]!, done), settle(ds[2]!, done)]);
    await nextTurn();
    // 4 settled before 3: singles go in the order they were settled; never a multiple ack over 2.
    expect(t.events.filter((e) => e.includes('ack'))).toEqual(['ch ack 1 multiple', 'ch ack 4', 'ch ack 3']);
    t.publisher.pending[0]!.confirm();
    await slow;
    await nextTurn();
    expect(t.events.filter((e) => e.includes('ack'))).toEqual(['ch ack 1 multiple', 'ch ack 4', 'ch ack 3', 'ch ack 2 multiple']);
  });

  test('an early delivery (work-ahead channel) is acked singly, at once, on its own channel', async () => {
    const t = setup();
    await t.run(t.delivery(7, true), done);
    expect(t.channel.ack).toHaveBeenCalledTimes(1);
    expect(t.channel.ack.mock.calls[0]![1]).toBeUndefined();
  });

  test('flush sends the acks waiting for the end of the turn at once (before a close)', async () => {
    const t = setup();
    await t.run(t.delivery(1), done);
    expect(t.channel.ack).not.toHaveBeenCalled();
    t.settler.flush();
    expect(t.events).toEqual(['settled done', 'ch ack 1 multiple']);
  });

  test('channel lost: acks waiting for the turn are dropped; the next channel gets its own window', async () => {
    const t = setup();
    await t.run(t.delivery(1), done);
    t.settler.channelLost();
    const next = t.newChannel('ch2');
    await nextTurn();
    expect(t.channel.ack).not.toHaveBeenCalled();
    // Delivery tags start again at 1 on the new channel.
    await t.run(t.delivery(1, false, next as unknown as ReturnType<typeof fakeChannel>), done);
    await nextTurn();
    expect(next.ack).toHaveBeenCalledTimes(1);
    expect(t.events.at(-1)).toBe('ch2 ack 1 multiple');
    expect(t.channel.ack).not.toHaveBeenCalled();
  });

  test('a channel that throws on ack (closed under us) is given up: no crash, nothing more is acked on it', async () => {
    const t = setup();
    t.channel.ack.mockImplementation(() => {
      throw new Error('Channel closed');
    });
    await t.run(t.delivery(1), done);
    await nextTurn();
    expect(t.channel.ack).toHaveBeenCalledTimes(1);
    await t.run(t.delivery(2), done);
    await nextTurn();
    expect(t.channel.ack).toHaveBeenCalledTimes(1);
  });
});
