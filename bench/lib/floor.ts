import amqplib from 'amqplib';
import { owe } from './cleanup';
import { deleteNamespace, waitForDepth } from './broker';
import { runInChild, serveJob } from './isolate';
import { nowSeconds } from './stats';

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
}

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
  const m = /^(\d+)\.(\d+)/.exec(version);
  const [major, minor] = m ? [Number(m[1]), Number(m[2])] : [Number.MAX_SAFE_INTEGER, 0];
  const before = (a: number, b: number) => major < a || (major === a && minor < b);
  const args: Record<string, unknown> = { 'x-queue-type': 'classic' };
  if (before(3, 12)) args['x-queue-mode'] = 'lazy';
  if (before(4, 0)) args['x-queue-version'] = 2;
  return args;
}

function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function measureFloor(job: FloorJob, progress: (line: string) => void): Promise<FloorResult> {
  const namespace = job.namespace;
  const queue = `${namespace}.floor`;
  let consumeConn: amqplib.ChannelModel | undefined;
  let publishConn: amqplib.ChannelModel | undefined;
  const closeAll = owe(async () => {
    await consumeConn?.close().catch(() => undefined);
    await publishConn?.close().catch(() => undefined);
  });
  const deleteAll = owe(() => deleteNamespace(job.amqpUrl, namespace, { queues: [queue] }));
  try {
    consumeConn = await amqplib.connect(job.amqpUrl, { clientProperties: { connection_name: `bench:${namespace}:consume` } });
    publishConn = await amqplib.connect(job.amqpUrl, { clientProperties: { connection_name: `bench:${namespace}:publish` } });
    const brokerVersion = String(consumeConn.connection.serverProperties.version ?? 'unknown');
    const queueArguments = plainQueueArguments(brokerVersion);
    const consumeCh = await consumeConn.createChannel();
    const publishCh = await publishConn.createConfirmChannel();
    await consumeCh.assertQueue(queue, { durable: true, arguments: queueArguments });

    progress(`filling ${queue} with ${job.n.toLocaleString('en-US')} messages of ${job.bodyBytes} bytes (${JSON.stringify(queueArguments)})`);
    let failure: Error | undefined;
    publishCh.on('error', (err: Error) => (failure ??= err));
    consumeCh.on('error', (err: Error) => (failure ??= err));
    const window = 2000;
    for (let i = 0; i < job.n; i += window) {
      for (let j = i; j < Math.min(job.n, i + window); j++) publishCh.sendToQueue(queue, paddedBody(j, job.bodyBytes), { persistent: true });
      await publishCh.waitForConfirms();
    }
    await waitForDepth(job.amqpUrl, queue, job.n, 60_000);

    let settled = 0;
    const onDelivery = (msg: amqplib.ConsumeMessage | null): void => {
      if (msg === null) {
        failure ??= new Error('floor consumer cancelled by the broker');
        return;
      }
      publishCh.sendToQueue(queue, msg.content, { persistent: true }, (err: unknown) => {
        if (err) {
          failure ??= err instanceof Error ? err : new Error(`floor publish nacked: ${String(err)}`);
          return;
        }
        consumeCh.ack(msg);
        settled++;
      });
    };
    await consumeCh.prefetch(job.prefetch);
    const { consumerTag } = await consumeCh.consume(queue, onDelivery, { noAck: false });
    progress(`looping: warm-up ${job.warmupMs / 1000} s, then ${job.windowMs / 1000} s counted`);
    await sleep(job.warmupMs);
    const t0 = nowSeconds();
    const c0 = settled;
    const cpu0 = cpuSeconds();
    await sleep(job.windowMs / 2);
    const t1 = nowSeconds();
    const c1 = settled;
    await sleep(job.windowMs / 2);
    const t2 = nowSeconds();
    const c2 = settled;
    const cpu2 = cpuSeconds();
    if (failure) throw failure;
    if (c2 === c0) throw new Error('the floor loop made no progress during its window');

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
    };
  } finally {
    await closeAll();
    await deleteAll();
  }
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
