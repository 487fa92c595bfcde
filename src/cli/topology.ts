import { Command } from 'commander';
import { updateLaneRecord } from '../amqp/lane-record-queue';
import { BrokerSession } from '../publish/session';
import type { ResolvedConfig } from '../config/types';
import { ladderTolerances, laddersOf, maxDelayMs } from '../delay/routing';
import { names } from '../naming/names';
import { formatDuration } from '../config/durations';
import { createLogger } from '../logging/logger';
import { buildTopology, type Topology } from '../topology/build';
import { laneRecordEntries } from '../topology/lane-record';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

interface TopologyFlags extends ConfigFlags {
  json?: boolean;
  dryRun?: boolean;
}

export function topologyCommand(): Command {
  return withConfigOptions(
    new Command('topology')
      .description('declare every exchange, queue and binding on the broker, then print them')
      .option('--json', 'print as JSON')
      .option('--dry-run', 'print without connecting to the broker (as declared on a current 4.x broker)'),
  ).action(
    action(async (flags: TopologyFlags) => {
      const config = configFromFlags(flags);
      // Without a broker: what a current 4.x broker gets (the arguments differ by version).
      let topology = buildTopology(config);
      if (!flags.dryRun) {
        // Opening a session asserts the whole topology, for the broker's own version.
        const session = await BrokerSession.open(config, 'cli', createLogger(config.log.level, 2));
        try {
          if (session.topology.broker) topology = buildTopology(config, session.topology.broker);
          // Recorded like a daemon's lanes, so a lane later removed from the config is found.
          const model = session.connection.connection;
          if (model) await updateLaneRecord(model, config.namespace, laneRecordEntries(config));
        } finally {
          await session.close();
        }
      }
      process.stdout.write(flags.json ? `${JSON.stringify(topology, null, 2)}\n` : describe(topology, maxDelayMs(config.delay), ladderLine(config)));
    }),
  );
}

/** On the ladder the delay queues are not in the topology: they are declared when first used. */
function ladderLine(config: ResolvedConfig): string | undefined {
  const { levels, unitMs } = config.delay;
  const tolerances = ladderTolerances(config);
  if (tolerances.length === 0) return undefined;
  const rungs = laddersOf(tolerances, levels).length;
  const example = names(config.namespace).rung(unitMs);
  const shown = tolerances.map((t) => `${+(t * 100).toFixed(4)}%`).join(', ');
  return `delay ladder: tolerance ${shown}, ${rungs} rungs (${example} …), each declared when first used and expired when unused`;
}

function describe(t: Topology, maxDelay: number, ladder: string | undefined): string {
  const lines = [`exchanges (${t.exchanges.length}):`];
  for (const e of t.exchanges) lines.push(`  ${e.name}  ${e.type}${argText(e.arguments)}`);
  lines.push(`queues (${t.queues.length}):`);
  for (const q of t.queues) lines.push(`  ${q.name}  [${q.role}]${argText(q.arguments)}`);
  lines.push(`bindings: ${t.bindings.length}`, `longest delay: ${formatDuration(maxDelay)}`);
  if (ladder) lines.push(ladder);
  return `${lines.join('\n')}\n`;
}

function argText(args: Readonly<Record<string, unknown>>): string {
  const entries = Object.entries(args);
  return entries.length ? `  ${entries.map(([k, v]) => `${k}=${String(v)}`).join(' ')}` : '';
}
