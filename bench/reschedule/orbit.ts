import type { ResolvedConfig } from '../../src/config/types';
import { Daemon } from '../../src/daemon';
import { Scheduler } from '../../src/publish/scheduler';
import type { Handler } from '../../src/worker/handler-types';
import { owe } from '../lib/cleanup';
import { LoopClock, StallWatch, type LoopTiming, type PreparedContender, type RescheduleContender, type RescheduleParams } from './contender';
import { LANE, prepareRabbitStage } from './rabbit-setup';

/**
 * orbit itself: an in-process Daemon (its own consume and publish connections, prefetch =
 * lane concurrency, metrics on) whose handler reschedules every message one hour ahead. Each
 * message is decoded, run, turned into a reschedule, published to the hour-ahead delay level
 * with confirm and mandatory, and acked after the confirm — the full production path.
 */
export const orbitContender: RescheduleContender = orbitWith('orbit', 0);

/** Outstanding cancels `orbit-100k-cancels` starts with: the cost of cancel and replace (issue 16). */
const TOMBSTONES = 100_000;

/** orbit as above, with 100,000 outstanding cancels (of ids it never sees) read at start and checked on every run. */
export const orbitCancelsContender: RescheduleContender = orbitWith('orbit-100k-cancels', TOMBSTONES);

function orbitWith(name: string, tombstones: number): RescheduleContender {
  return {
    name,
    summary:
      tombstones === 0
        ? 'orbit Daemon; handler returns { reschedule: { delay: 1 h } }; ack after confirm'
        : `the same, with ${tombstones.toLocaleString('en-US')} outstanding cancels of other ids (written before, untimed)`,
    async prepare(params: RescheduleParams): Promise<PreparedContender> {
      const stage = await prepareRabbitStage(params, 'orbit');
      if (tombstones > 0) {
        const scheduler = new Scheduler({ config: stage.config });
        try {
          await scheduler.cancel(Array.from({ length: tombstones }, (_, i) => `ghost-${i}`));
        } finally {
          await scheduler.close();
        }
      }
      let daemon: Daemon | undefined;
      // Stopped before the namespace is deleted, also on Ctrl-C, so it cannot re-declare its lane.
      const stopDaemon = owe(async () => {
        await daemon?.stop().catch(() => undefined);
      });
      return {
        verify: () => stage.verify(),
        async cleanup() {
          await stopDaemon();
          await stage.cleanup();
        },
        async run() {
          const timing = await timeDaemonLoop(stage.config, params.n, params.delayMs, (d) => (daemon = d));
          // Outside the timed loop: stop consuming, let the last acks go out, close.
          await stopDaemon();
          return timing;
        },
      };
    },
  };
}

/**
 * Starts a Daemon on `config` whose handler reschedules every message of the lane `LANE`
 * `delayMs` ahead, and times the loop from the first settlement to the `n`-th (each must
 * settle as rescheduled): the loop's own rate. Not from the first handler start: a daemon's
 * first publish to a quorum rung waits `NEW_QUORUM_QUEUE_SETTLE_MS` (5 s) once per rung and
 * process (the rung may be new to the broker), which would otherwise be most of a short run;
 * that wait shows in `startupSeconds` instead. The loop covers n − 1 settlements, so its
 * time is scaled by n / (n − 1): `n / loopSeconds` is the loop's rate. The daemon is handed to `started` at once so the
 * caller can stop it, also on failure or Ctrl-C; it is left running. `running` is called
 * once `start()` has resolved (connected, topology asserted, consuming).
 */
export function timeDaemonLoop(
  config: ResolvedConfig,
  n: number,
  delayMs: number,
  started: (daemon: Daemon) => void,
  running?: () => void,
): Promise<LoopTiming> {
  // What a real handler does: a fresh outcome per message.
  const handler: Handler = async () => ({ reschedule: { delay: delayMs } });
  const clock = new LoopClock(n, true);
  return new Promise<LoopTiming>((resolve, reject) => {
    const stall = new StallWatch(() => clock.settled, reject);
    const daemon = new Daemon({
      config,
      handlers: { [LANE]: handler },
      observer: {
        messageSettled: (_lane, kind) => {
          if (kind !== 'rescheduled') {
            stall.stop();
            reject(new Error(`a message was settled as ${kind}, expected rescheduled`));
            return;
          }
          const timing = clock.settle();
          if (timing) {
            stall.stop();
            resolve(timing);
          }
        },
      },
    });
    started(daemon);
    stall.start();
    daemon.start().then(running, (err: unknown) => {
      stall.stop();
      reject(err as Error);
    });
  });
}
