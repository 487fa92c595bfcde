import { randomUUID } from 'node:crypto';
import type { BundleConfig } from '../config/types';
import { BUNDLE_HEADER, BUNDLE_VERSION, encodeAllowances, encodeBundle, entrySize } from '../message/bundle';
import { HEADER } from '../message/headers';
import type { OutgoingMessage } from '../message/types';

/**
 * Where a bundle goes: one exchange and routing key (the same lane, partition and delay
 * rung) and whatever the sender needs besides (`CC` keys, the rung to declare).
 */
export interface BundleRoute {
  readonly exchange: string;
  readonly routingKey: string;
  /**
   * `CC` routing keys: on the ladder the routing key names only the rung, and these the
   * destination, so they are part of where a bundle goes.
   */
  readonly cc?: readonly string[] | undefined;
}

/** Sends one AMQP message; resolves when the broker confirmed it. */
export type SendBundle<R extends BundleRoute = BundleRoute> = (route: R, body: Buffer, options: { messageId: string; priority: number; headers: Record<string, unknown> }) => Promise<void>;

/** Sends a message that found no company as itself, unbundled; resolves when it is confirmed. */
export type SendAlone<R extends BundleRoute = BundleRoute> = (route: R, msg: OutgoingMessage) => Promise<void>;

/**
 * Told once per logical message when its AMQP message is confirmed (`ok`) or failed (`error`).
 * `token` is whatever the caller passed with the message (the seeder passes its line number),
 * so one function serves every message: no promise and no closure per message.
 */
export type Settle = (token: number, ok: boolean, error?: unknown) => void;

interface Open<R extends BundleRoute, K extends string> {
  readonly key: string;
  readonly route: R;
  readonly priority: number;
  readonly lane: string;
  /** Parallel arrays, one slot per logical message (no object per message). */
  readonly msgs: OutgoingMessage[];
  readonly settles: Settle[];
  readonly tokens: number[];
  /** With `onConfirmed` only: what each message was published as, and when it was added (`performance.now()`). */
  readonly kinds: Array<K | undefined>;
  readonly addedAt: number[];
  bytes: number;
  timer: NodeJS.Timeout | undefined;
  /** `performance.now()` by which the bundle must be sent: the earliest of its messages' own. */
  deadline: number;
}

/** Bundle header bytes (version and count) before the first entry. */
const BUNDLE_OVERHEAD = 5;

/**
 * Packs logical messages going the same way — same exchange and routing key (so the same
 * lane, partition and delay in units) and the same priority — into bundles of up to `max`
 * messages or `maxBytes`, waiting at most `linger` for company. Each logical publish
 * settles when its bundle is confirmed; a failed bundle fails every message in it, so no
 * caller acks an original whose replacement was not confirmed.
 *
 * A bulk loader that has to wait for room can send bundles before their linger is over
 * with `flushOldest`, so lingering bundles never stall it.
 */
export class Bundler<R extends BundleRoute = BundleRoute, K extends string = string> {
  /** Open bundles in the order they were opened (a Map keeps insertion order). */
  private readonly open = new Map<string, Open<R, K>>();
  /** The open bundle the last message went to (cleared when it is sent): sorted input hits it again without a lookup. */
  private last: Open<R, K> | undefined;
  private waiting = 0;
  /** Set by `stopLingering`: shutting down, so a bundle waits one timer turn, not `linger`. */
  private hurry = false;
  /** Bundles sent and not yet confirmed or failed. */
  private readonly sending = new Set<Promise<void>>();

  /**
   * `sendAlone` takes a bundle of one: it goes as the plain message, with its own id, so a
   * lone publish reads the same on the broker whether its lane is bundled or not.
   */
  constructor(
    private readonly send: SendBundle<R>,
    private readonly sendAlone: SendAlone<R>,
    /** Each message's allowed lateness (`HEADER.allowed`), written beside the bundle; none when absent. */
    private readonly allowedOf?: (msg: OutgoingMessage) => number,
    /**
     * Told of each message added with a `kind` once its bundle is confirmed, with the seconds
     * since it was added (the publisher's metrics). Here rather than in a wrapper around each
     * message's `settle`: a closure per message, held while it lingers, costs the collector.
     */
    private readonly onConfirmed?: (kind: K, seconds: number) => void,
  ) {}

  /**
   * Shutdown: sends every open bundle now, and from now on a bundle waits only for the
   * messages of the current turn, so nothing a closing publisher holds is left unsent.
   */
  stopLingering(): void {
    this.hurry = true;
    this.flushAll();
  }

  /** Resolves once every bundle sent so far is confirmed or failed. */
  async settled(): Promise<void> {
    while (this.sending.size > 0) await Promise.allSettled([...this.sending]);
  }

  /** Logical messages in open bundles, not yet sent. */
  get lingering(): number {
    return this.waiting;
  }

  /**
   * Adds a message; `settle(token, …)` is called once its bundle is confirmed or failed.
   * `holdMs`: how long this message may wait for company (the lane's linger, or more where
   * the delay's tolerance allows: `delay/ladder.ts`); its bundle is sent by the earliest
   * such deadline of its messages.
   */
  addWith(msg: OutgoingMessage, route: R, config: BundleConfig, settle: Settle, token: number, holdMs = config.lingerMs, kind?: K): void {
    let group = this.last;
    if (group === undefined || (group.route !== route && !sameWay(group.route, route)) || group.priority !== msg.priority) {
      const key = `${route.exchange}\u0000${route.routingKey}\u0000${msg.priority}\u0000${route.cc?.join('\u0000') ?? ''}`;
      group = this.open.get(key);
      if (!group) {
        group = { key, route, priority: msg.priority, lane: msg.lane, msgs: [], settles: [], tokens: [], kinds: [], addedAt: [], bytes: BUNDLE_OVERHEAD, timer: undefined, deadline: Infinity };
        this.open.set(key, group);
      }
      this.last = group;
    }
    const size = entrySize(msg);
    // Never let one message push a non-empty bundle past maxBytes: send what is there first.
    if (group.msgs.length > 0 && group.bytes + size > config.maxBytes) {
      this.flush(group);
      this.addWith(msg, route, config, settle, token, holdMs, kind);
      return;
    }
    group.msgs.push(msg);
    group.settles.push(settle);
    group.tokens.push(token);
    if (this.onConfirmed) {
      group.kinds.push(kind);
      group.addedAt.push(performance.now());
    }
    group.bytes += size;
    this.waiting++;
    if (group.msgs.length >= config.max || group.bytes >= config.maxBytes) {
      this.flush(group);
      return;
    }
    const hold = this.hurry ? 0 : holdMs;
    // Timers are set only when a bundle's deadline moves earlier: with one hold per lane and
    // delay (the common case), once per bundle.
    const deadline = performance.now() + hold;
    if (deadline < group.deadline) {
      group.deadline = deadline;
      clearTimeout(group.timer);
      const g = group;
      g.timer = setTimeout(() => this.flush(g), hold);
    }
  }

  /** Sends every open bundle now (shutdown, or a caller that cannot wait). */
  flushAll(): void {
    this.flushOldest(0);
  }

  /**
   * Sends open bundles, oldest first, until at most `keep` logical messages are left
   * lingering. The oldest bundles have had the longest to fill (with input sorted by due
   * time, they are complete), so they go first.
   */
  flushOldest(keep: number): void {
    for (const group of this.open.values()) {
      if (this.waiting <= keep) return;
      this.flush(group);
    }
  }

  private flush(group: Open<R, K>): void {
    if (this.open.get(group.key) === group) this.open.delete(group.key);
    if (this.last === group) this.last = undefined;
    clearTimeout(group.timer);
    const { msgs, settles, tokens, kinds, addedAt } = group;
    const onConfirmed = this.onConfirmed;
    if (msgs.length === 0) return;
    this.waiting -= msgs.length;
    let sent: Promise<void>;
    try {
      sent = msgs.length === 1 ? this.sendAlone(group.route, msgs[0]!) : this.sendBundle(group);
    } catch (err) {
      sent = Promise.reject(err);
    }
    const tracked = sent.then(
      () => {
        this.sending.delete(tracked);
        const now = onConfirmed ? performance.now() : 0;
        for (let i = 0; i < settles.length; i++) {
          const kind = kinds[i];
          if (kind !== undefined) onConfirmed!(kind, (now - addedAt[i]!) / 1000);
          settles[i]!(tokens[i]!, true);
        }
      },
      (err: unknown) => {
        this.sending.delete(tracked);
        for (let i = 0; i < settles.length; i++) settles[i]!(tokens[i]!, false, err);
      },
    );
    this.sending.add(tracked);
  }

  private sendBundle(group: Open<R, K>): Promise<void> {
    const { msgs } = group;
    let dueAt = Infinity;
    for (let i = 0; i < msgs.length; i++) if (msgs[i]!.dueAt < dueAt) dueAt = msgs[i]!.dueAt;
    const headers: Record<string, unknown> = { [BUNDLE_HEADER]: BUNDLE_VERSION, [HEADER.lane]: group.lane, [HEADER.due]: dueAt };
    const allowedOf = this.allowedOf;
    if (allowedOf) headers[HEADER.allowed] = encodeAllowances(msgs.length, (i) => allowedOf(msgs[i]!));
    return this.send(group.route, encodeBundle(msgs, group.bytes), { messageId: randomUUID(), priority: group.priority, headers });
  }
}

/** Whether two routes go the same way: exchange, routing key and `CC` keys. */
function sameWay(a: BundleRoute, b: BundleRoute): boolean {
  if (a.exchange !== b.exchange || a.routingKey !== b.routingKey) return false;
  const x = a.cc ?? [];
  const y = b.cc ?? [];
  return x.length === y.length && x.every((k, i) => k === y[i]);
}
