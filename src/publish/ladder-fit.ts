import { readBrokerNodes } from '../amqp/read-broker-nodes';
import type { ResolvedConfig } from '../config/types';
import { longestHopMs } from '../delay/waypoints';
import type { Logger } from '../logging/logger';
import { fitLadders, fitWarning, rungBudget, type BrokerNodeLimits, type LadderFit } from '../topology/broker-capacity';
import type { MessagePublisher } from './message-publisher';

/**
 * A broker that cannot keep the configured ladder's queues open gets a thinned one, in every
 * process that publishes to it (the daemon, a Scheduler, the CLI): out of file handles, a
 * RabbitMQ 3.x node does not refuse cleanly but stops answering every client and its own
 * CLI, and does not boot again until its queues are gone (docs/DEPLOY.md; session 24 wedged
 * a node so with 380 quorum rungs). Thinned, every rung is still one of the configured
 * ladder's, so processes that fitted and processes that did not share their queues; messages
 * run later, within the wider tolerance the thinned ladder keeps, never early.
 *
 * The limit is what the management API reports (`fd_total`); a broker without it is not
 * judged (AMQP does not tell a client), and the configured ladder is used.
 */

/** Fits `publisher`'s ladders to what `nodes` report, and says so at warn; undefined when the configured ladders fit, or no node reports its limit. */
export function fitLadderToNodes(
  config: Pick<ResolvedConfig, 'delay' | 'lanes' | 'cancel'>,
  publisher: Pick<MessagePublisher, 'fitLadders'>,
  nodes: readonly BrokerNodeLimits[],
  log: Logger,
  /** More fields for the warning (where the figures came from). */
  context: Readonly<Record<string, unknown>> = {},
): LadderFit | undefined {
  if (!(config.delay.tolerance > 0)) return undefined;
  const limit = rungBudget(nodes);
  const fit = limit && fitLadders(config.delay, config.lanes, limit.budget);
  if (!limit || !fit) return undefined;
  publisher.fitLadders(fit, longestHopMs(config.cancel.retentionMs, Math.max(...fit.tolerances.values())));
  log.warn(
    {
      ...context,
      path: 'delay.tolerance',
      node: limit.node.name,
      fdTotal: limit.node.fdTotal,
      rungBudget: fit.budget,
      rungs: fit.rungsInSpan,
      configuredRungs: fit.configuredRungsInSpan,
      tolerances: Object.fromEntries([...fit.tolerances].map(([configured, kept]) => [String(configured), +kept.toFixed(4)])),
    },
    fitWarning(fit, limit.node),
  );
  return fit;
}

/**
 * Reads the broker's nodes from the management API (bounded, read-only) and fits
 * `publisher`'s ladders to them: for a Scheduler's or the CLI's session, before a bulk load
 * declares its rungs (`Scheduler.prepareRungs`). Never throws: a broker that does not answer
 * keeps the configured ladder (the daemon's own check says why at info).
 */
export async function fitLadderToBroker(
  config: Pick<ResolvedConfig, 'amqp' | 'delay' | 'lanes' | 'cancel'>,
  publisher: Pick<MessagePublisher, 'fitLadders'>,
  log: Logger,
): Promise<LadderFit | undefined> {
  if (!(config.delay.tolerance > 0) || !config.amqp.management.check) return undefined;
  try {
    const result = await readBrokerNodes(config.amqp);
    return 'nodes' in result ? fitLadderToNodes(config, publisher, result.nodes, log, { managementApi: result.from }) : undefined;
  } catch {
    return undefined;
  }
}
