import type { DelayConfig, LaneConfig } from '../config/types';
import { ladderRungs, ladderTolerance, thinLadder } from '../delay/ladder';
import { ladderOf, ladderTolerances } from '../delay/routing';

/** The lanes as the estimate needs them: each one's tolerance (`lanes[].tolerance`). */
type Lanes = readonly Pick<LaneConfig, 'tolerance'>[];

/**
 * Whether the broker's nodes can hold the queues orbit's layout will use, from what the
 * management API reports of each node (`amqp/read-broker-nodes.ts` reads it). Pure.
 *
 * Every queue that holds messages keeps file handles open on RabbitMQ 3.x: about 3 each,
 * measured on 3.10.8, for a lazy classic v2 queue holding messages and for every quorum queue
 * (an empty classic queue holds none). A node started from a shell keeps the shell's
 * `ulimit -n` (1,024 by default; RabbitMQ keeps ~100 of them for itself and reports 927 as
 * its limit): it then holds about 300 such queues. Past that, classic queues nack publishes
 * and a node with quorum queues stops answering (both seen on 3.10.8, docs/DEPLOY.md).
 * Debian's systemd unit and the official images give it 65,536. The binary levels are few
 * (`levels` queues); the ladder is what needs the room.
 */

/** File handles one queue holding messages keeps open (3.10.8, classic lazy v2 and quorum alike). */
export const HANDLES_PER_QUEUE = 3;
/** The span of intervals the check sizes the ladder for: the user's workload, 1 min to 1 day. */
export const SIZING_SPAN_MS: readonly [number, number] = [60_000, 86_400_000];
/** Handles kept free beside the ladder: lane and other queues, the WAL, connections' overhead. */
export const HANDLE_HEADROOM = 200;
/** A node using more of its handles than this already, at start, is worth a warning of its own. */
export const HANDLES_BUSY_SHARE = 0.8;

/** One broker node as the management API reports it (`GET /api/nodes`). */
export interface BrokerNodeLimits {
  readonly name: string;
  /** The node's file-handle limit (`fd_total`); undefined when the broker does not report it. */
  readonly fdTotal: number | undefined;
  /** Handles in use (`fd_used`); undefined when not reported. */
  readonly fdUsed: number | undefined;
}

/** A broker that cannot hold what the config asks of it; `path` names the setting it bears on. */
export interface CapacityWarning {
  /** `limit`: the node cannot keep the layout's queues open; `busy`: it can, but uses most of its handles already. */
  readonly kind: 'limit' | 'busy';
  readonly path: string;
  readonly node: string;
  readonly message: string;
}

/**
 * Rungs of the ladder whose TTL falls within `spanMs` (within the longest delay); 0 for binary
 * levels. With lanes of other tolerances (`lanes[].tolerance`), the rungs of every one of their
 * ladders, each TTL once. `spanMs` defaults to the user's workload (`SIZING_SPAN_MS`); a
 * benchmark passes its own.
 */
export function ladderQueuesInSpan(delay: DelayConfig, lanes: Lanes = [], spanMs: readonly [number, number] = SIZING_SPAN_MS): number {
  if (!(delay.tolerance > 0)) return 0;
  const maxUnits = 2 ** delay.levels - 1;
  const [from, to] = spanMs.map((ms) => Math.ceil(ms / delay.unitMs));
  const rungs = new Set<number>();
  for (const t of ladderTolerances({ delay, lanes })) {
    for (const r of ladderRungs(t, Math.min(maxUnits, to!))) if (r >= from!) rungs.add(r);
  }
  return rungs.size;
}

/** Delay queues the layout may keep busy: the ladders' rungs over the sizing span, or every binary level. */
function delayQueuesInSpan(delay: DelayConfig, lanes: Lanes, spanMs: readonly [number, number] = SIZING_SPAN_MS): number {
  return delay.tolerance > 0 ? ladderQueuesInSpan(delay, lanes, spanMs) : delay.levels;
}

/** File handles a node should have for the layout of `delay` (and lanes of other tolerances): the ladders' queues over `spanMs` (the sizing span unless given), plus headroom. */
export function handlesNeeded(delay: DelayConfig, lanes: Lanes = [], spanMs: readonly [number, number] = SIZING_SPAN_MS): number {
  return delayQueuesInSpan(delay, lanes, spanMs) * HANDLES_PER_QUEUE + HANDLE_HEADROOM;
}

const RAISE_LIMIT =
  "raise the broker's file-handle limit (systemd: LimitNOFILE=65536 in the unit; a shell: ulimit -n 65536 before rabbitmq-server; " +
  "the official images and Debian's unit already do)";
const RAISE = `${RAISE_LIMIT}, or lower the ladder with a larger delay.tolerance`;

/** The warnings for each node whose handles cannot hold the layout; empty when every node can. */
export function capacityWarnings(nodes: readonly BrokerNodeLimits[], delay: DelayConfig, lanes: Lanes = []): CapacityWarning[] {
  const needed = handlesNeeded(delay, lanes);
  const queues = delayQueuesInSpan(delay, lanes);
  const tolerances = ladderTolerances({ delay, lanes }).map((t) => `${+(t * 100).toFixed(4)} %`);
  const layout =
    delay.tolerance > 0
      ? `the delay ladder${tolerances.length > 1 ? 's' : ''} at tolerance ${tolerances.join(', ')} use${tolerances.length > 1 ? '' : 's'} up to ${queues} queues for delays between 1 min and 1 day`
      : `the ${queues} binary delay levels`;
  const out: CapacityWarning[] = [];
  for (const node of nodes) {
    if (node.fdTotal === undefined) continue;
    if (node.fdTotal < needed) {
      out.push({
        kind: 'limit',
        path: delay.tolerance > 0 ? 'delay.tolerance' : 'delay.levels',
        node: node.name,
        message:
          `RabbitMQ node ${node.name} can keep ${node.fdTotal} file handles open; ${layout}, ` +
          `each keeping ~${HANDLES_PER_QUEUE} open while it holds messages (${needed} with headroom). ` +
          'Out of handles, RabbitMQ nacks publishes to classic queues and a node with quorum queues stops answering: ' +
          RAISE,
      });
    } else if (node.fdUsed !== undefined && node.fdUsed > node.fdTotal * HANDLES_BUSY_SHARE) {
      out.push({
        kind: 'busy',
        path: delay.tolerance > 0 ? 'delay.tolerance' : 'delay.levels',
        node: node.name,
        message:
          `RabbitMQ node ${node.name} already uses ${node.fdUsed} of its ${node.fdTotal} file handles ` +
          `(${layout} need ~${needed}); out of handles, it refuses publishes or stops: ${RAISE}`,
      });
    }
  }
  return out;
}

/**
 * Handles RabbitMQ 3.x keeps back from its queues: the management API reports the process's
 * limit (`fd_total` 1,024 for a node started from a shell), its file handle cache allows
 * queues 97 fewer (`rabbitmq-diagnostics status` says 927).
 */
export const BROKER_RESERVED_HANDLES = 100;
/** The fewest rungs a fitted ladder is given, however few handles a node reports: the ladder must still work. */
export const MIN_RUNG_BUDGET = 16;
/** Each try of `fitLadders` spaces the rungs this much wider than the one before. */
const FIT_STEP = 1.1;
/** …and it stops after this many: 1.1^50 ≈ 117, so 2 % becomes at most ~230 %. */
const MAX_FIT_STEPS = 50;

/** How many ladder rungs the node with the fewest file handles can keep busy, and which node; undefined when no node reports its limit. */
export function rungBudget(nodes: readonly BrokerNodeLimits[]): { readonly budget: number; readonly node: BrokerNodeLimits } | undefined {
  const reporting = nodes.filter((n) => n.fdTotal !== undefined);
  if (reporting.length === 0) return undefined;
  const node = reporting.reduce((a, b) => (b.fdTotal! < a.fdTotal! ? b : a));
  const usable = node.fdTotal! - BROKER_RESERVED_HANDLES - HANDLE_HEADROOM;
  return { budget: Math.max(MIN_RUNG_BUDGET, Math.floor(usable / HANDLES_PER_QUEUE)), node };
}

/** The ladders fitted to a broker's handles (`fitLadders`). */
export interface LadderFit {
  /** Each configured tolerance (the namespace's, each lane's) → its thinned ladder, in units. */
  readonly ladders: ReadonlyMap<number, readonly number[]>;
  /** Each configured tolerance → the tolerance its thinned ladder keeps (the bound messages run within). */
  readonly tolerances: ReadonlyMap<number, number>;
  /** The rungs the fitted ladders have for delays of up to a day (`rungsUpToSpan`), and the configured ones had. */
  readonly rungsInSpan: number;
  readonly configuredRungsInSpan: number;
  readonly budget: number;
}

/**
 * The rungs of `ladders` (in units) a delay of up to a day (the sizing span's top) rounds up
 * to, each once. The short ones count too: a bulk load declares every rung below its longest
 * delay at once (`Scheduler.prepareRungs`), and a quorum rung keeps its handles open even empty.
 */
function rungsUpToSpan(ladders: Iterable<readonly number[]>, unitMs: number): number {
  const to = Math.ceil(SIZING_SPAN_MS[1] / unitMs);
  const rungs = new Set<number>();
  for (const ladder of ladders) {
    for (const r of ladder) {
      rungs.add(r);
      if (r >= to) break;
    }
  }
  return rungs.size;
}

/**
 * Ladders a broker that can keep `budget` rung queues busy can hold, or undefined when the
 * configured ones fit (their rungs for delays of up to a day ≤ budget). Each configured
 * ladder is thinned (`thinLadder`) to the spacing of a wider one, every tolerance widened by
 * the same factor, the smallest of 1.1, 1.1², … that brings those rungs within the budget.
 * Messages then run later by up to the thinned ladder's own tolerance (`ladderTolerance`),
 * never earlier. Pure.
 */
export function fitLadders(delay: DelayConfig, lanes: Lanes, budget: number): LadderFit | undefined {
  const configured = ladderTolerances({ delay, lanes });
  if (configured.length === 0) return undefined;
  const fine = new Map(configured.map((t) => [t, ladderOf(t, delay.levels)] as const));
  const configuredRungsInSpan = rungsUpToSpan(fine.values(), delay.unitMs);
  if (configuredRungsInSpan <= budget) return undefined;
  let ladders = new Map<number, readonly number[]>();
  let count = configuredRungsInSpan;
  for (let step = 1; step <= MAX_FIT_STEPS && count > budget; step++) {
    const factor = FIT_STEP ** step;
    ladders = new Map(configured.map((t) => [t, thinLadder(fine.get(t)!, t * factor)] as const));
    count = rungsUpToSpan(ladders.values(), delay.unitMs);
  }
  const tolerances = new Map([...ladders].map(([t, rungs]) => [t, ladderTolerance(rungs, t)] as const));
  return { ladders, tolerances, rungsInSpan: count, configuredRungsInSpan, budget };
}

/** The warning a fitted ladder is logged with: what the broker holds, what orbit does instead, and the fix. */
export function fitWarning(fit: LadderFit, node: BrokerNodeLimits): string {
  const pct = (t: number) => `${+(t * 100).toFixed(2)} %`;
  const pairs = [...fit.tolerances].map(([configured, kept]) => `${pct(configured)} → ${pct(kept)}`).join(', ');
  return (
    `RabbitMQ node ${node.name} can keep ${node.fdTotal} file handles open: room for ~${fit.budget} busy delay-ladder queues ` +
    `(~${HANDLES_PER_QUEUE} handles each, ${BROKER_RESERVED_HANDLES + HANDLE_HEADROOM} kept free), but the configured ladder has ${fit.configuredRungsInSpan} rungs for delays of up to a day. ` +
    `Out of handles, a RabbitMQ 3.x node stops answering every client, so orbit uses ${fit.rungsInSpan} of those rungs instead: ` +
    `messages run later within a wider tolerance (${pairs}; never early; orbit_ladder_tolerance shows it). For the configured precision, ${RAISE_LIMIT}`
  );
}
