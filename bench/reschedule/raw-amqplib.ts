import amqplib from 'amqplib';
import { owe } from '../lib/cleanup';
import { LoopClock, StallWatch, type LoopTiming, type PreparedContender, type RescheduleContender, type RescheduleParams } from './contender';
import { prepareRabbitStage } from './rabbit-setup';

/** Headers the broker adds on dead-lettering; a correct republish drops them (they grow). */
const BROKER_HEADERS = new Set(['x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason', 'x-last-death-exchange', 'x-last-death-queue', 'x-last-death-reason']);

/**
 * The baseline: the least a correct hand-written reschedule loop on plain amqplib must do,
 * with no framework around it. Same broker objects as orbit (its lane queue and its hour-
 * ahead delay exchange and routing key, computed once), same prefetch, two connections.
 *
 * Per delivery, synchronously in the consume callback: copy the headers minus the broker's
 * death records, set orbit's due/runs/attempt headers, publish the same body to the hour-
 * ahead exchange on a ConfirmChannel of the second connection (persistent, mandatory, same
 * messageId and priority), and in that publish's confirm callback ack the delivery on the
 * channel it came on. Up to `prefetch` messages are in flight at once: nothing waits except
 * each ack for its own confirm, which is the invariant. A returned (unroutable) message
 * fails the run.
 */
export const rawAmqplibContender: RescheduleContender = {
  name: 'raw-amqplib',
  summary: 'amqplib consume → publish on ConfirmChannel (2nd connection) → ack in confirm callback',
  async prepare(params: RescheduleParams): Promise<PreparedContender> {
    const stage = await prepareRabbitStage(params, 'raw');
    const route = stage.route;
    const { exchange, routingKey } = route;
    let consumeConn: amqplib.ChannelModel | undefined;
    let publishConn: amqplib.ChannelModel | undefined;
    // Closed before the namespace is deleted, also on Ctrl-C.
    const closeAll = owe(async () => {
      await consumeConn?.close().catch(() => undefined);
      await publishConn?.close().catch(() => undefined);
    });
    try {
      consumeConn = await amqplib.connect(params.amqpUrl, { clientProperties: { connection_name: `bench:${stage.namespace}:consume` } });
      publishConn = await amqplib.connect(params.amqpUrl, { clientProperties: { connection_name: `bench:${stage.namespace}:publish` } });
      // A confirm that arrives while the clean-up closes the connections must not crash the run.
      for (const conn of [consumeConn, publishConn]) conn.on('error', () => undefined);
    } catch (err) {
      await closeAll();
      await stage.cleanup();
      throw err;
    }
    return {
      verify: () => stage.verify(),
      async cleanup() {
        await closeAll();
        await stage.cleanup();
      },
      async run() {
        const consumeCh = await consumeConn!.createChannel();
        const publishCh = await publishConn!.createConfirmChannel();
        const { n, delayMs } = params;
        let consumerTag: string | undefined;
        const clock = new LoopClock(n);

        const timing = await new Promise<LoopTiming>((resolve, reject) => {
          const stall = new StallWatch(() => clock.settled, reject);
          const fail = (err: Error) => {
            stall.stop();
            reject(err);
          };
          publishCh.on('return', (msg: amqplib.Message) => fail(new Error(`returned as unroutable: ${msg.fields.exchange} / ${msg.fields.routingKey}`)));
          publishCh.on('error', fail);
          consumeCh.on('error', fail);

          const onDelivery = (msg: amqplib.ConsumeMessage | null): void => {
            if (msg === null) return fail(new Error('consumer cancelled by the broker'));
            clock.begin();
            const incoming = (msg.properties.headers ?? {}) as Record<string, unknown>;
            const headers: Record<string, unknown> = {};
            for (const key in incoming) if (!BROKER_HEADERS.has(key)) headers[key] = incoming[key];
            headers['x-orbit-due'] = Date.now() + delayMs;
            headers['x-orbit-runs'] = (Number(incoming['x-orbit-runs']) || 0) + 1;
            headers['x-orbit-attempt'] = 0;
            publishCh.publish(
              exchange,
              routingKey,
              msg.content,
              {
                persistent: true,
                mandatory: true,
                // On the ladder: the key that leads from the rung to the lane, as orbit sends it.
                ...(route.cc ? { CC: [...route.cc] } : {}),
                messageId: msg.properties.messageId as string | undefined,
                priority: msg.properties.priority as number | undefined,
                headers,
              },
              (err: unknown) => {
                if (err) return fail(err instanceof Error ? err : new Error(`nacked: ${String(err)}`));
                try {
                  consumeCh.ack(msg);
                } catch (ackErr) {
                  // The consume connection is closing (the clean-up after the timed loop): the ack no longer matters then.
                  if (clock.settled < n) return fail(ackErr instanceof Error ? ackErr : new Error(String(ackErr)));
                  return;
                }
                const timing = clock.settle();
                if (timing) {
                  stall.stop();
                  resolve(timing);
                }
              },
            );
          };

          stall.start();
          void (async () => {
            await consumeCh.prefetch(params.concurrency);
            consumerTag = (await consumeCh.consume(stage.laneQueue, onDelivery, { noAck: false })).consumerTag;
          })().catch(fail);
        });

        // Outside the timed loop: stop consuming, flush the last acks, close.
        if (consumerTag) await consumeCh.cancel(consumerTag).catch(() => undefined);
        await consumeCh.close().catch(() => undefined);
        await publishCh.close().catch(() => undefined);
        await closeAll();
        return timing;
      },
    };
  },
};
