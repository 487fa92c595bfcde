/**
 * Names of everything orbit declares. One place, so the topology builder, the publisher,
 * the consumer and the CLI can never disagree.
 */
export interface Names {
  readonly namespace: string;
  delayLevel(level: number): string;
  readonly deliver: string;
  readonly unroutable: string;
  readonly dead: string;
  lane(lane: string): string;
  /** Queue of partition `p` of a partitioned lane. */
  lanePartition(lane: string, p: number): string;
}

export function names(namespace: string): Names {
  return {
    namespace,
    delayLevel: (level) => `${namespace}.delay.${level}`,
    deliver: `${namespace}.deliver`,
    unroutable: `${namespace}.unroutable`,
    dead: `${namespace}.dead`,
    lane: (lane) => `${namespace}.lane.${lane}`,
    lanePartition: (lane, p) => `${namespace}.lane.${lane}.${p}`,
  };
}
