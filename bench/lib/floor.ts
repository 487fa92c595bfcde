import amqplib from 'amqplib';
import { owe } from './cleanup';
import { deleteNamespace, waitForDepth } from './broker';
import { runInChild, serveJob } from './isolate';
import { cpuSeconds, nowSeconds } from './stats';
import { brokerFeatures } from '../../src/topology/broker-features';
import { storageArguments } from '../../src/topology/build';
import { unitHash } from './hash';

/**
 * The broker's floor (DESIGN.md, "Precision"): what RabbitMQ itself does per message in the
 * loop orbit's steady state runs, with nothing of orbit's around it. One plain durable classic
 * queue, stored as orbit stores its classic queues (`x-queue-mode: lazy` where the broker is
 * older than 3.12, `x-queue-version: 2` where it is older than 4.0; read from the version the
 * broker announces); N messages of ~80 bytes in it; a consumer with prefetch P on one
 * connection; for each delivery, the same body is published back to the same queue
 * (`sendToQueue`, persistent, as orbit publishes) on a confirm channel of a second connection,
 * and the delivery is acked in that publish's confirm callback. After a warm-up, the settled
 * messages (acked after their copy was confirmed) are counted over a fixed window. This is what
 * "1.0 × floor" means in the steady and fill benchmarks.
 */
export interface FloorJob {
  readonly kind: 'floor';
  readonly label: string;
  /** Chosen by the caller (runFloor deletes it again if the run fails). */
  readonly namespace: string;
  readonly amqpUrl: string;
  /** Messages resident in the queue. */
  readonly n: number;
  readonly prefetch: number;
  readonly bodyBytes: number;
  readonly warmupMs: number;
  readonly windowMs: number;
  /**
   * The raw ladder instead of the plain loop: the design's ceiling, without orbit's client
   * (`LADDER_BASELINE` below). `intervalMs(id)` is fixed per run: the steady workload's.
   */
  readonly ladder?: {
    readonly rungsSeconds: number;
    /** The raw hold instead (`HOLD_BASELINE`): each rung also consumed, this prefetch per consumer. */
    readonly holdPrefetch?: number;
  };
}

/**
 * The raw ladder (README, "The delay ladder"), in raw amqplib: the consumer publishes each
 * message through the default exchange to a fixed-TTL rung queue (one per whole second, 1 …
 * `rungsSeconds`, chosen by a hash of the message's id as the steady workload chooses its
 * interval) with a `CC` key that a direct deliver exchange binds to the queue; the rung
 * dead-letters it there when the TTL expires. The message carries orbit's five state headers
 * (due, runs, attempt, lane, generation) as orbit sends them. One hop and two queue passes per
 * run, like orbit's unbundled steady state at a tolerance: what the design itself costs the
 * broker, with nothing of orbit's client around it.
 */
export const LADDER_BASELINE = 'raw ladder';

/**
 * The raw hold: the raw ladder whose rungs are consumed too. A consumer on each rung (its
 * own prefetch, on a second channel) holds each message it is given until the due time in
 * its headers, then runs it as the ladder does (publish to the rung of its interval, ack on
 * the confirm). A message the rung consumers have no room for expires into the queue as on
 * the ladder. So a run the rungs hand out costs one queue pass: the ceiling of a daemon
 * that consumes its short rungs (docs/BENCHMARKS.md, session 30).
 */
export const HOLD_BASELINE = 'raw hold';

/**
 * The floor's run per mode: resident messages, warm-up and counted window. One plan for the
 * benchmarks that report against the same floor (`reschedule`, `steady`), so their ratios stay comparable.
 */
export const FLOOR_PLAN = { quick: { n: 10_000, warmupMs: 2_000, windowMs: 5_000 }, full: { n: 40_000, warmupMs: 4_000, windowMs: 15_000 } } as const;

export interface FloorResult {
  /** Settled messages per second over the window. */
  readonly msgsPerSec: number;
  /** The same for the first and second half of the window (a drifting rate shows here). */
  readonly halves: readonly [number, number];
  readonly windowSeconds: number;
  readonly settled: number;
  /** Client CPU (this process) per message over the window, µs. */
  readonly cpuMicrosPerMsg: number;
  /** The broker's version and the queue arguments declared for it. */
  readonly brokerVersion: string;
  readonly queueArguments: Readonly<Record<string, unknown>>;
  /** Messages in the consumed queue at the window's end: > 0, the loop was capacity-bound. */
  readonly depthAtEnd: number;
  /** The raw hold: the share of the window's runs taken from a rung (one queue pass), not from the queue. */
  readonly fromRungsShare?: number;
}

/** A JSON body of exactly `bytes` bytes (at least ~40) for message `i`: the user's messages are < 100 bytes. */
export function paddedBody(i: number, bytes = 80): Buffer {
  const head = `{"url":"https://example.com/items/${i}","pad":"`;
  const tail = '"}';
  const pad = Math.max(0, bytes - head.length - tail.length);
  return Buffer.from(head + 'x'.repeat(pad) + tail);
}

/** Arguments of a plain classic queue stored as orbit stores its own on this broker version. */
export function plainQueueArguments(version: string): Record<string, unknown> {
  return { ...storageArguments('classic', brokerFeatures(version)) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function measureFloor(job: FloorJob, progress: (line: string) => void): Promise<FloorResult> {
  const namespace = job.namespace;
  const queue = `${namespace}.floor`;
  const deliver = `${namespace}.deliver`;
  const rungs = job.ladder ? Array.from({ length: job.ladder.rungsSeconds }, (_, i) => `${namespace}.wait:${i + 1}s`) : [];
  let consumeConn: amqplib.ChannelModel | undefined;
  let publishConn: amqplib.ChannelModel | undefined;
  /** Set when the run ends: confirms still arriving then settle nothing (their channel is closing). */
  let stopping = false;
  const closeAll = owe(async () => {
    await consumeConn?.close().catch(() => undefined);
    await publishConn?.close().catch(() => undefined);
  });
  const deleteAll = owe(() => deleteNamespace(job.amqpUrl, namespace, { queues: [queue, ...rungs], exchanges: job.ladder ? [deliver] : [] }));
  try {
    consumeConn = await amqplib.connect(job.amqpUrl, { clientProperties: { connection_name: `bench:${namespace}:consume` } });
    publishConn = await amqplib.connect(job.amqpUrl, { clientProperties: { connection_name: `bench:${namespace}:publish` } });
    const brokerVersion = String(consumeConn.connection.serverProperties.version ?? 'unknown');
    const queueArguments = plainQueueArguments(brokerVersion);
    const consumeCh = await consumeConn.createChannel();
    const publishCh = await publishConn.createConfirmChannel();
    await consumeCh.assertQueue(queue, { durable: true, arguments: queueArguments });
    if (job.ladder) {
      await consumeCh.assertExchange(deliver, 'direct', { durable: true });
      await consumeCh.bindQueue(queue, deliver, LADDER_KEY);
      for (const [i, rung] of rungs.entries()) {
        await consumeCh.assertQueue(rung, { durable: true, arguments: { ...queueArguments, 'x-message-ttl': (i + 1) * 1000, 'x-dead-letter-exchange': deliver } });
      }
    }

    progress(`filling ${queue} with ${job.n.toLocaleString('en-US')} messages of ${job.bodyBytes} bytes (${JSON.stringify(queueArguments)})`);
    let failure: Error | undefined;
    publishCh.on('error', (err: Error) => (failure ??= err));
    consumeCh.on('error', (err: Error) => (failure ??= err));
    const window = 2000;
    for (let i = 0; i < job.n; i += window) {
      for (let j = i; j < Math.min(job.n, i + window); j++) {
        publishCh.sendToQueue(queue, paddedBody(j, job.bodyBytes), job.ladder ? { persistent: true, messageId: `s-${j}`, headers: stateHeaders() } : { persistent: true });
      }
      await publishCh.waitForConfirms();
    }
    await waitForDepth(job.amqpUrl, queue, job.n, 60_000);

    let settled = 0;
    let fromRungs = 0;
    const run = (ch: amqplib.Channel, msg: amqplib.ConsumeMessage, fromRung: boolean): void => {
      const settle = (err: unknown): void => {
        if (stopping) return;
        if (err) {
          failure ??= err instanceof Error ? err : new Error(`floor publish nacked: ${String(err)}`);
          return;
        }
        ch.ack(msg);
        settled++;
        if (fromRung) fromRungs++;
      };
      if (!job.ladder) {
        publishCh.sendToQueue(queue, msg.content, { persistent: true }, settle);
        return;
      }
      const id = String(msg.properties.messageId);
      const index = Math.floor(unitHash(id) * rungs.length);
      const headers = stateHeaders(Date.now() + (index + 1) * 1000);
      publishCh.sendToQueue(rungs[index]!, msg.content, { persistent: true, messageId: id, headers, CC: [LADDER_KEY] }, settle);
    };
    const onDelivery = (msg: amqplib.ConsumeMessage | null): void => {
      if (msg === null) failure ??= new Error('floor consumer cancelled by the broker');
      else run(consumeCh, msg, false);
    };
    await consumeCh.prefetch(job.prefetch);
    const { consumerTag } = await consumeCh.consume(queue, onDelivery, { noAck: false });
    if (job.ladder?.holdPrefetch !== undefined) {
      // Held until due, then run; timers end with the run (the window ends long before a rung's TTL could).
      const holdCh = await consumeConn.createChannel();
      holdCh.on('error', (err: Error) => (failure ??= err));
      await holdCh.prefetch(job.ladder.holdPrefetch);
      const onHeld = (msg: amqplib.ConsumeMessage | null): void => {
        if (msg === null) return;
        const wait = Number((msg.properties.headers ?? {})['x-orbit-due']) - Date.now();
        if (!(wait > 0)) run(holdCh, msg, true);
        else setTimeout(() => !stopping && run(holdCh, msg, true), wait).unref();
      };
      for (const rung of rungs) await holdCh.consume(rung, onHeld, { noAck: false });
    }
    progress(`looping: warm-up ${job.warmupMs / 1000} s, then ${job.windowMs / 1000} s counted`);
    await sleep(job.warmupMs);
    const t0 = nowSeconds();
    const c0 = settled;
    const r0 = fromRungs;
    const cpu0 = cpuSeconds();
    await sleep(job.windowMs / 2);
    const t1 = nowSeconds();
    const c1 = settled;
    await sleep(job.windowMs / 2);
    const t2 = nowSeconds();
    const c2 = settled;
    const r2 = fromRungs;
    const cpu2 = cpuSeconds();
    const depthAtEnd = (await consumeCh.checkQueue(queue)).messageCount;
    if (failure) throw failure;
    if (c2 === c0) throw new Error('the floor loop made no progress during its window');

    stopping = true;
    await consumeCh.cancel(consumerTag).catch(() => undefined);
    await sleep(200);
    await closeAll();
    return {
      msgsPerSec: (c2 - c0) / (t2 - t0),
      halves: [(c1 - c0) / (t1 - t0), (c2 - c1) / (t2 - t1)],
      windowSeconds: t2 - t0,
      settled: c2 - c0,
      cpuMicrosPerMsg: ((cpu2 - cpu0) * 1e6) / (c2 - c0),
      brokerVersion,
      queueArguments,
      depthAtEnd,
      ...(job.ladder?.holdPrefetch === undefined ? {} : { fromRungsShare: (r2 - r0) / (c2 - c0) }),
    };
  } finally {
    stopping = true;
    await closeAll();
    await deleteAll();
  }
}

/** The raw ladder's `CC` key: the deliver exchange's binding to the queue. */
const LADDER_KEY = 'to.floor';

/** orbit's state headers on a message, as many and as large (`writeState`). */
function stateHeaders(dueAt = Date.now()): Record<string, unknown> {
  return { 'x-orbit-due': dueAt, 'x-orbit-runs': 3, 'x-orbit-attempt': 0, 'x-orbit-lane': 'floor', 'x-orbit-gen': 1_764_806_400_000.125 };
}

const SCRIPT = __filename;

/** Runs the floor in a fresh node process (or here, with `inProcess`). */
export function runFloor(job: FloorJob, inProcess: boolean, progress: (line: string) => void): Promise<FloorResult> {
  return withNamespaceCleanup(job.amqpUrl, job.namespace, () =>
    inProcess ? measureFloor(job, (line) => progress(`${job.label}: ${line}`)) : runInChild<FloorJob, FloorResult>(SCRIPT, job),
  );
}

/**
 * Runs `run` (a child that declares things under `namespace`); if it fails (or its process
 * dies), deletes the namespace again from here: a child stopped halfway may have left queues,
 * or kept declaring them while it cleaned up.
 */
export async function withNamespaceCleanup<T>(amqpUrl: string, namespace: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    // The child exits right after answering; give it a moment so its connections are gone.
    await sleep(2000);
    await deleteNamespace(amqpUrl, namespace).catch(() => undefined);
    throw err;
  }
}

// Run as a script (`fork`ed by runFloor): one job, one answer, exit.
if (require.main === module) {
  serveJob<FloorJob, FloorResult>((job) => measureFloor(job, (line) => process.stderr.write(`[bench] ${job.label}: ${line}\n`)));
}
