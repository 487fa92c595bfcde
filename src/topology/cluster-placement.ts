import type { TopologyConfig } from '../config/types';

/**
 * On a cluster, a classic queue lives on the one node that declared it. While that node is
 * down the queue is unavailable, and a daemon's topology assert (which every start and every
 * reconnect runs) waits for it: with the dead or unroutable queue, or a lane, on the dead
 * node, no lane of the daemon consumes (the cluster fault scenario stalled so; see
 * docs/RELIABILITY.md). Quorum queues are replicated and fail over. A daemon can tell a
 * cluster from the management API's node list, which it reads at start anyway.
 */

/** A setting that leaves a queue on one node of a cluster; `path` names it. */
export interface PlacementWarning {
  readonly path: string;
  readonly message: string;
}

/** The warnings for the classic queues of `config` on a broker of `nodes` (none on a single node). */
export function clusterPlacementWarnings(nodes: readonly string[], config: TopologyConfig): PlacementWarning[] {
  if (nodes.length < 2) return [];
  const cluster = `the broker is a cluster of ${nodes.length} nodes (${nodes.join(', ')})`;
  const outage = 'each lives on the one node that declared it, and while that node is down every daemon waits for it at start and on reconnect, running nothing';
  const out: PlacementWarning[] = [];
  if (config.deadLetters.queueType === 'classic') {
    out.push({
      path: 'deadLetters.queueType',
      message:
        `${cluster}, but the dead and unroutable queues are classic queues: ${outage}. ` +
        'Set deadLetters.queueType: quorum (an existing namespace keeps its queues until `orbit migrate`; README "Clusters")',
    });
  }
  const lanes = config.lanes.filter((l) => l.queueType === 'classic').map((l) => l.name);
  if (lanes.length > 0) {
    out.push({
      path: 'lanes[].queueType',
      message:
        `${cluster}, but lane${lanes.length === 1 ? '' : 's'} ${lanes.join(', ')} ${lanes.length === 1 ? 'is a classic queue' : 'are classic queues'}: ${outage}. ` +
        'Set queueType: quorum on the lanes (with maxPriority 0 on RabbitMQ 3.x; README "Clusters")',
    });
  }
  if (config.delay.queueType === 'classic') {
    out.push({
      path: 'delay.queueType',
      message:
        `${cluster}, but the delay queues are classic queues: each lives on the one node that declared it, so what waits in a node that is down waits for it, ` +
        "and a node's crash can lose what they dead-letter. Set delay.queueType: quorum (the default)",
    });
  }
  return out;
}
