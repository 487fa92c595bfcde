import type { Topology } from './build';

/**
 * The slice of the topology one lane consumer needs (its queue, the deliver exchange and
 * the binding between them), re-asserted on its own channel so a consumer can resume even
 * when only the consume connection reconnected.
 */
export function laneTopology(topology: Topology, lane: string): Topology {
  const queues = topology.queues.filter((q) => q.role === 'lane' && q.lane === lane);
  const names = new Set(queues.map((q) => q.name));
  const bindings = topology.bindings.filter((b) => b.kind === 'queue' && names.has(b.destination));
  const sources = new Set(bindings.map((b) => b.source));
  // The deliver exchange's alternate exchange need not exist for the declare to succeed.
  const exchanges = topology.exchanges.filter((e) => sources.has(e.name));
  return { exchanges, queues, bindings };
}
