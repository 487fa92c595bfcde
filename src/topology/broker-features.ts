import type { LaneConfig } from '../config/types';

/**
 * What the connected broker accepts and how it behaves, from the version it reports at
 * connect (DESIGN.md, "RabbitMQ versions"). Pure: the amqp layer reads the version, the
 * topology is built for it. A version that cannot be read counts as a current broker, the
 * safest guess (no `x-queue-mode`, an explicit delivery limit, no global QoS).
 */
export interface BrokerFeatures {
  /** As the broker reported it (`server_properties.version`); `unknown` when it did not. */
  readonly version: string;
  /** Classic queues still honour `x-queue-mode` (before 3.12); 4.3 refuses to declare it at all. */
  readonly queueMode: boolean;
  /** Classic queues have two storage versions, chosen by `x-queue-version` (before 4.0; 4.x has only v2). */
  readonly queueVersion: boolean;
  /** Quorum queues get a delivery limit of 20 unless declared with one (4.0 on). */
  readonly quorumDefaultDeliveryLimit: boolean;
  /** Quorum queues have priorities: two levels, 0–4 normal, 5 and above high (4.0 on). */
  readonly quorumPriorities: boolean;
  /** `basic.qos` with `global` is accepted (deprecated in 4.0, refused by 4.3). */
  readonly globalQos: boolean;
}

/**
 * The delivery limit orbit declares on every quorum queue: the largest the broker takes,
 * on 3.x and 4.x alike (`-1` means unlimited on 4.0 but drops at the first return on 3.10).
 * A return (nack, a `basic.get` handed back, a channel closed with it unacked) then never
 * drops or moves a message: looking at a queue stays free. Poison messages are orbit's to
 * handle (retries, dead letters), not the broker's.
 */
export const QUORUM_DELIVERY_LIMIT = 2_147_483_647;

/** Parses `major.minor[.patch…]`; undefined when the text is not a version. */
export function parseVersion(version: string | undefined): readonly [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(version ?? '');
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function atLeast(v: readonly [number, number], major: number, minor: number): boolean {
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

export function brokerFeatures(version: string | undefined): BrokerFeatures {
  const v = parseVersion(version) ?? [Number.MAX_SAFE_INTEGER, 0];
  return {
    version: parseVersion(version) ? String(version) : 'unknown',
    queueMode: !atLeast(v, 3, 12),
    queueVersion: !atLeast(v, 4, 0),
    quorumDefaultDeliveryLimit: atLeast(v, 4, 0),
    quorumPriorities: atLeast(v, 4, 0),
    globalQos: !atLeast(v, 4, 0),
  };
}

/** What `orbit topology --dry-run` and the offline tools build for: a current 4.x broker. */
export const CURRENT_BROKER: BrokerFeatures = brokerFeatures(undefined);

/** A setting this broker cannot honour: `path` names the config key, as config problems do. */
export interface BrokerProblem {
  readonly path: string;
  readonly message: string;
}

/** Settings the connected broker cannot carry out; empty when it can do everything asked. */
export function brokerProblems(lanes: readonly LaneConfig[], features: BrokerFeatures): BrokerProblem[] {
  const out: BrokerProblem[] = [];
  lanes.forEach((lane, i) => {
    if (lane.queueType === 'quorum' && lane.maxPriority > 0 && !features.quorumPriorities) {
      out.push({
        path: `lanes[${i}].maxPriority`,
        message:
          `lanes[${i}].maxPriority is ${lane.maxPriority} but RabbitMQ ${features.version} quorum queues have no priorities ` +
          `(4.0 and later have two levels): set "maxPriority": 0, or "queueType": "classic" for lane "${lane.name}"`,
      });
    }
  });
  return out;
}
