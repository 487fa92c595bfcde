import type { Settlement } from './decide-outcome';
import type { CopyKind } from './recent-runs';

/**
 * What the worker (lane workers and work-ahead) reports as it goes: metrics (and tests)
 * listen here, so the worker knows nothing about Prometheus.
 */
export interface WorkerObserver {
  /**
   * A message is taken up; `latenessMs` = start − due (negative when early); `allowedMs`: how
   * late it may run and keep its bound, as its publisher said (undefined when it did not).
   */
  handlerStarted?(lane: string, latenessMs: number, early: boolean, allowedMs: number | undefined): void;
  /** A delivery was unpacked into `messages` logical messages (1 unless it is a bundle). */
  deliveryDecoded?(lane: string, messages: number): void;
  /** A message waited for the lane's rate limit before its handler could start. */
  rateLimited?(lane: string, waitedMs: number): void;
  /** The handler returned, threw or timed out. */
  handlerFinished?(lane: string, handlerMs: number): void;
  /** The message is settled: its replacement confirmed (the ack follows). */
  messageSettled?(lane: string, kind: Settlement['kind']): void;
  /** A replacement could not be published yet; the original stays unacked. */
  settleFailed?(lane: string, err: unknown): void;
  /** The message no longer occupies a slot (settled, or given up for redelivery). */
  messageReleased?(lane: string): void;
  /** A copy of a cancelled id was dropped (before its run, or its run's replacement after it). */
  messageCancelled?(lane: string): void;
  /**
   * A copy of a run settled lately was dropped (`RecentRuns`): `exact`, the broker delivered it
   * again after a crash forgot its ack; `fork`, a second copy of the message made when a channel
   * closed under a run whose replacement the broker had taken.
   */
  copyDropped?(lane: string, kind: CopyKind): void;
  /** Work-ahead took `messages` logical messages (a bundle counts each of its own) early, to run in `lane`. */
  takenEarly?(lane: string, messages: number): void;
  /** The rung holder handed `lane` a delivery of `messages` logical messages it held until due (`RungHolder`). */
  heldRun?(lane: string, messages: number): void;
  /** `lane` started (true) or stopped (false) working ahead: see `WorkAhead`, "Episodes". */
  workingAhead?(lane: string, active: boolean): void;
  /** The broker delivered nothing to `lane` while its queue held ready messages: its consumer was restarted (`ConsumerWatch`). */
  consumerRestarted?(lane: string): void;
}

/** Calls every observer's hook in turn (metrics plus a caller's own). */
export function combineObservers(...observers: ReadonlyArray<WorkerObserver | undefined>): WorkerObserver {
  const list = observers.filter((o): o is WorkerObserver => o !== undefined);
  // The usual case (metrics only) pays no fan-out on the hot path.
  if (list.length === 1) return list[0]!;
  return {
    handlerStarted: (...a) => list.forEach((o) => o.handlerStarted?.(...a)),
    deliveryDecoded: (...a) => list.forEach((o) => o.deliveryDecoded?.(...a)),
    rateLimited: (...a) => list.forEach((o) => o.rateLimited?.(...a)),
    handlerFinished: (...a) => list.forEach((o) => o.handlerFinished?.(...a)),
    messageSettled: (...a) => list.forEach((o) => o.messageSettled?.(...a)),
    settleFailed: (...a) => list.forEach((o) => o.settleFailed?.(...a)),
    messageReleased: (...a) => list.forEach((o) => o.messageReleased?.(...a)),
    messageCancelled: (...a) => list.forEach((o) => o.messageCancelled?.(...a)),
    copyDropped: (...a) => list.forEach((o) => o.copyDropped?.(...a)),
    takenEarly: (...a) => list.forEach((o) => o.takenEarly?.(...a)),
    heldRun: (...a) => list.forEach((o) => o.heldRun?.(...a)),
    workingAhead: (...a) => list.forEach((o) => o.workingAhead?.(...a)),
    consumerRestarted: (...a) => list.forEach((o) => o.consumerRestarted?.(...a)),
  };
}
