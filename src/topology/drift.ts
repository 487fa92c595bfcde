import type { BrokerFeatures } from './broker-features';
import type { QueueSpec } from './build';
import type { QueueType } from '../config/types';

/**
 * A queue that exists on the broker with other arguments than orbit would declare for it
 * now: declared by an older orbit, or on an older broker (a 3.10 namespace on 4.x). Such a
 * redeclare is PRECONDITION_FAILED; orbit then uses the queue as it is (a passive declare),
 * says so, and `orbit migrate` redeclares it without losing a message.
 *
 * - `ignored`: this broker does not act on the difference (`x-queue-mode` from 3.12 on).
 * - `risky`: the queue works, but not as orbit needs (a 4.x quorum queue without orbit's
 *   delivery limit drops or moves a message returned 20 times); orbit stops looking into
 *   it (work-ahead, `dlq list`) until it is migrated.
 * - `conflict`: a different queue (TTL, type, priorities, dead-letter target): a changed
 *   config, not an upgrade; starting would route messages wrongly, so it stops with a hint.
 */
export type DriftSeverity = 'ignored' | 'risky' | 'conflict';

export interface QueueDrift {
  readonly queue: string;
  readonly role: QueueSpec['role'];
  /** The argument the broker named as inequivalent. */
  readonly argument: string;
  readonly severity: DriftSeverity;
  /** One sentence for the log and `orbit migrate`: what differs and what it does here. */
  readonly why: string;
  /** Set when the queue is known to be of another type than orbit declares (a quorum dead queue of an earlier orbit). */
  readonly existingType?: QueueType;
}

/** Pure: how much the difference in `argument` matters for `queue` on this broker. */
export function classifyDrift(queue: QueueSpec, argument: string, broker: BrokerFeatures): QueueDrift {
  const at = { queue: queue.name, role: queue.role, argument };
  const wants = queue.arguments[argument];
  if (queue.arguments['x-queue-type'] === 'quorum' && (argument === 'x-queue-type' || NOT_ON_QUORUM.has(argument) || ONLY_ON_QUORUM.has(argument))) {
    return typeDrift(at, queue.role);
  }
  switch (argument) {
    case 'x-queue-mode':
      return broker.queueMode
        ? { ...at, severity: 'risky', why: `RabbitMQ ${broker.version} keeps a classic queue's backlog in memory unless it is lazy; the queue was declared without "x-queue-mode": "lazy"` }
        : { ...at, severity: 'ignored', why: `the queue was declared with "x-queue-mode", which RabbitMQ ${broker.version} ignores (and 4.3 refuses on a new declare)` };
    case 'x-max-age':
    case 'x-stream-max-segment-size-bytes':
      return { ...at, severity: 'ignored', why: `the tombstone stream was declared with another "${argument}" (a changed cancel.retention): the broker keeps tombstones that long, daemons drop them from memory after cancel.retention` };
    case 'x-queue-version':
      return { ...at, severity: 'ignored', why: 'the queue was declared with another "x-queue-version"; it keeps working' };
    case 'x-delivery-limit':
      return broker.quorumDefaultDeliveryLimit
        ? {
            ...at,
            severity: 'risky',
            why:
              `the quorum queue has no delivery limit of orbit's (wants ${String(wants)}), so RabbitMQ ${broker.version} applies its default of 20: ` +
              'a message returned 20 times (a crash loop, a reconnect, a look by work-ahead or `dlq list`) is dropped or moved on',
          }
        : { ...at, severity: 'ignored', why: `the quorum queue has another delivery limit; RabbitMQ ${broker.version} sets none by default` };
    default:
      return { ...at, severity: 'conflict', why: `the queue exists with another "${argument}" (orbit wants ${wants === undefined ? 'none' : JSON.stringify(wants)})` };
  }
}

/**
 * Arguments only a classic queue carries, and arguments orbit sets only on quorum queues. A
 * quorum declare met by a classic queue is refused on the first argument in the broker's own
 * order that differs, which is seldom `x-queue-type` itself (3.10 names `x-queue-mode` for a
 * lazy queue, `x-overflow` for a delay level).
 */
const NOT_ON_QUORUM = new Set(['x-queue-mode', 'x-queue-version']);
// Not `x-delivery-limit`: a quorum queue of an older orbit on 4.x lacks it (risky, below).
const ONLY_ON_QUORUM = new Set(['x-overflow', 'x-dead-letter-strategy']);

/**
 * A classic queue where orbit declares a quorum one. A delay queue: a namespace made when
 * classic was the default `delay.queueType` (before December 2026); it works, but dead-letters
 * at-most-once, which is what quorum is for: `risky`, used as it is, with a warning to migrate.
 * A dead or unroutable queue (`deadLetters.queueType: quorum` set on an existing namespace):
 * it keeps what it holds, only not replicated, so `ignored`, noted. A lane: a conflict.
 */
function typeDrift(at: Pick<QueueDrift, 'queue' | 'role' | 'argument'>, role: QueueSpec['role']): QueueDrift {
  if (role === 'dead' || role === 'unroutable') {
    return {
      ...at,
      severity: 'ignored',
      existingType: 'classic',
      why: 'a classic queue where deadLetters.queueType wants a quorum one: it keeps what it holds, but on one node only (orbit migrate makes it quorum)',
    };
  }
  if (role !== 'delay') return { ...at, severity: 'conflict', why: 'the queue exists as another queue type (orbit wants quorum)' };
  return {
    ...at,
    severity: 'risky',
    why: 'the delay queue is a classic queue (classic was the default delay.queueType before December 2026) where orbit now declares a quorum one: it works, but a broker crash can lose a message it is dead-lettering',
  };
}

/**
 * A dead or unroutable queue that is a quorum queue with orbit's arguments: declared when
 * these queues followed `delay.queueType`. It keeps working; only a look at part of it (a
 * page of `dlq list`, the console) moves what it looked at to its end.
 */
export function quorumStoreDrift(queue: QueueSpec, argument: string): QueueDrift {
  return {
    queue: queue.name,
    role: queue.role,
    argument,
    severity: 'ignored',
    existingType: 'quorum',
    why: 'a quorum queue (the dead and unroutable queues followed delay.queueType before December 2026; now they are classic): it works, but a look at part of it moves what it looked at to its end',
  };
}

/** True when orbit must not look into the queue with fetch-and-hand-back (work-ahead, `dlq list`). */
export function unsafeToLook(drift: QueueDrift | undefined): boolean {
  return drift?.severity === 'risky' && drift.argument === 'x-delivery-limit';
}
