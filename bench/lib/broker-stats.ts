import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { benchCtl } from './ctl';
import { median } from './stats';

const run = promisify(execFile);

/**
 * What the RabbitMQ node itself says about its memory and disk, read with `rabbitmqctl` /
 * `rabbitmq-diagnostics` on this host. Benchmarks that report broker RAM or disk need them;
 * they are skipped (with a note) when the broker is remote.
 */

/** Parts of `rabbitmq-diagnostics memory_breakdown` that grow with resident messages. */
export const BREAKDOWN_PARTS = ['queue_procs', 'quorum_queue_procs', 'quorum_ets', 'binary', 'msg_index', 'other_proc', 'other_ets'] as const;
export type BreakdownPart = (typeof BREAKDOWN_PARTS)[number];

export interface BrokerMemory {
  /** What the node calls "Total memory used" (its calculation strategy: here the OS RSS). */
  readonly totalBytes: number;
  /** `erlang:memory(total)`: what the Erlang VM has allocated (less allocator noise than RSS). */
  readonly erlangBytes: number;
  readonly parts: Readonly<Record<BreakdownPart, number>>;
}

export interface BrokerDisk {
  /** The node's data directory (`rabbit_mnesia:dir()`). */
  readonly dir: string;
  readonly bytes: number;
}

async function ctl(args: string[], timeout = 60_000): Promise<string> {
  return (await benchCtl(args, { timeoutMs: timeout, maxBuffer: 16 * 1024 * 1024 })).trim();
}

/** True when rabbitmqctl on this host can talk to the node. */
export async function brokerIsLocal(): Promise<boolean> {
  try {
    await ctl(['-q', 'eval', 'ok.'], 30_000);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs a full garbage collection of every process on the node, so a before/after memory
 * delta measures what stays, not garbage not yet collected. Takes milliseconds.
 */
export async function collectBrokerGarbage(): Promise<void> {
  await ctl(['-q', 'eval', '[erlang:garbage_collect(P) || P <- erlang:processes()], ok.']);
}

export async function brokerMemory(): Promise<BrokerMemory> {
  const [json, totals] = await Promise.all([
    benchCtl(['-q', 'memory_breakdown', '--unit', 'bytes', '--formatter', 'json'], { tool: 'rabbitmq-diagnostics' }),
    ctl(['-q', 'eval', '{vm_memory_monitor:get_process_memory(), erlang:memory(total)}.']),
  ]);
  const breakdown = JSON.parse(json) as Record<string, { bytes: number }>;
  const m = /\{(\d+),(\d+)\}/.exec(totals.replace(/\s+/g, ''));
  if (!m) throw new Error(`unexpected memory totals from rabbitmqctl: ${totals}`);
  const parts = Object.fromEntries(BREAKDOWN_PARTS.map((p) => [p, breakdown[p]?.bytes ?? 0])) as Record<BreakdownPart, number>;
  return { totalBytes: Number(m[1]), erlangBytes: Number(m[2]), parts };
}

let beamPid: number | undefined;

/**
 * Bytes the node's Erlang VM has caused to be written to storage so far (`write_bytes` of
 * `/proc/<pid>/io`: counted when a page is dirtied, so buffered writes the kernel flushes
 * later count too); undefined when the node is not on this host. Two readings apart give the
 * disk throughput a workload needs.
 */
export async function brokerWrittenBytes(): Promise<number | undefined> {
  try {
    beamPid ??= Number((await ctl(['-q', 'eval', 'list_to_integer(os:getpid()).'], 30_000)).trim());
    const m = /^write_bytes:\s*(\d+)/m.exec(await readFile(`/proc/${beamPid}/io`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

let dataDir: string | undefined;

/** The node's data directory: classic queue stores, quorum WAL and segments, Mnesia. */
export async function brokerDataDir(): Promise<string> {
  dataDir ??= (await ctl(['-q', 'eval', 'rabbit_mnesia:dir().'])).replace(/^"|"$/g, '');
  return dataDir;
}

/** `du -sb` of the node's data directory. */
export async function brokerDisk(): Promise<BrokerDisk> {
  const dir = await brokerDataDir();
  const { stdout } = await run('du', ['-sb', dir], { timeout: 120_000 });
  return { dir, bytes: Number(stdout.split(/\s/)[0]) };
}

export interface NamespaceQueues {
  readonly queues: number;
  /** Messages (ready + unacked) in them, as the broker last reported (quorum queues: every few seconds). */
  readonly messages: number;
  /** Sum of the queue processes' own memory (`list_queues memory`): what these queues alone hold. */
  readonly memoryBytes: number;
}

/** The broker's figures for every queue whose name starts with `prefix`. */
export async function queuesUnder(prefix: string): Promise<NamespaceQueues> {
  const out = await ctl(['-q', 'list_queues', 'name', 'messages', 'memory', '--no-table-headers']);
  let queues = 0;
  let messages = 0;
  let memoryBytes = 0;
  for (const line of out.split('\n')) {
    const [name, count, memory] = line.trim().split(/\s+/);
    if (!name?.startsWith(prefix)) continue;
    queues++;
    messages += Number(count) || 0;
    memoryBytes += Number(memory) || 0;
  }
  return { queues, messages, memoryBytes };
}

export interface OwnQueueMemory {
  readonly queues: number;
  /** The queue processes' own memory (heap, stack, mailbox), after a GC of each. */
  readonly processBytes: number;
  /** Off-heap binaries those processes reference, each counted once (message bodies, buffers). */
  readonly binaryBytes: number;
}

/**
 * Memory held by the queues whose name starts with `prefix` alone: their processes (a quorum
 * queue's Ra server) after a GC, plus the distinct off-heap binaries they reference. Other
 * clients of a shared broker cannot disturb this figure, unlike the node's totals. Shared
 * structures are not in it: quorum queues' WAL tables (`quorum_ets`), the shared message store
 * index (`msg_index`; orbit's small messages are embedded in each queue's own index instead).
 */
export async function ownQueueMemory(prefix: string): Promise<OwnQueueMemory> {
  const erl = `
    Prefix = <<${[...Buffer.from(prefix)].join(',')}>>,
    Qs = [Q || Q <- rabbit_amqqueue:list(), begin {resource, _, queue, N} = amqqueue:get_name(Q), binary:longest_common_prefix([N, Prefix]) =:= byte_size(Prefix) end],
    ToPid = fun(P) when is_pid(P) -> P; ({Name, _Node}) -> whereis(Name); (_) -> undefined end,
    Pids = [P || Q <- Qs, P <- [ToPid(amqqueue:get_pid(Q))], is_pid(P)],
    _ = [erlang:garbage_collect(P) || P <- Pids],
    Mem = lists:sum([M || P <- Pids, {memory, M} <- [erlang:process_info(P, memory)]]),
    Bins = lists:ukeysort(1, lists:append([B || P <- Pids, {binary, B} <- [erlang:process_info(P, binary)]])),
    {length(Pids), Mem, lists:sum([S || {_, S, _} <- Bins])}.`;
  const out = await ctl(['-q', 'eval', erl.replace(/\s+/g, ' ')]);
  const m = /\{(\d+),(\d+),(\d+)\}/.exec(out.replace(/\s+/g, ''));
  if (!m) throw new Error(`unexpected answer from rabbitmqctl: ${out}`);
  return { queues: Number(m[1]), processBytes: Number(m[2]), binaryBytes: Number(m[3]) };
}

/** Polls until the queues under `prefix` report at least `count` messages (quorum queue figures lag a few seconds). */
export async function waitForMessagesUnder(prefix: string, count: number, timeoutMs: number): Promise<NamespaceQueues> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const q = await queuesUnder(prefix);
    if (q.messages >= count || Date.now() > deadline) return q;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Bytes on disk of the classic queues whose name starts with `prefix`: each classic queue
 * keeps its index and small messages in a directory of its own, named in its `.queue_name`.
 * (Quorum queues write to a WAL shared by every queue of the node first; see brokerDisk.)
 */
export async function classicQueueDiskUnder(prefix: string): Promise<number> {
  const root = join(await brokerDataDir(), 'msg_stores', 'vhosts');
  let total = 0;
  for (const vhost of await readdir(root).catch(() => [] as string[])) {
    const queuesDir = join(root, vhost, 'queues');
    for (const dir of await readdir(queuesDir).catch(() => [] as string[])) {
      const label = await readFile(join(queuesDir, dir, '.queue_name'), 'utf8').catch(() => '');
      const name = /^QUEUE: (.*)$/m.exec(label)?.[1];
      if (!name?.startsWith(prefix)) continue;
      for (const file of await readdir(join(queuesDir, dir)).catch(() => [] as string[])) {
        total += (await stat(join(queuesDir, dir, file)).catch(() => ({ size: 0 }))).size;
      }
    }
  }
  return total;
}

/** Readings per settled reading; their median is used (the broker is shared: one reading can catch another client's spike). */
const SETTLED_SAMPLES = 3;

/**
 * The broker's memory once it has gone quiet: 2 s without load (lazy queues page out and
 * queue processes hibernate shortly after), then the median of three readings 0.5 s apart,
 * each after a full garbage collection of every broker process.
 */
export async function settledBrokerMemory(): Promise<BrokerMemory> {
  await sleep(2000);
  const readings: BrokerMemory[] = [];
  for (let i = 0; i < SETTLED_SAMPLES; i++) {
    if (i > 0) await sleep(500);
    await collectBrokerGarbage();
    readings.push(await brokerMemory());
  }
  const med = (f: (m: BrokerMemory) => number): number => median(readings.map(f));
  return {
    totalBytes: med((m) => m.totalBytes),
    erlangBytes: med((m) => m.erlangBytes),
    parts: Object.fromEntries(BREAKDOWN_PARTS.map((p) => [p, med((m) => m.parts[p])])) as Record<BreakdownPart, number>,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

