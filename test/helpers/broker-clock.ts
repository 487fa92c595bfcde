/**
 * How much earlier, by this machine's clock, a message may leave a queue after waiting about
 * `waitedMs` than the TTL says. RabbitMQ times TTLs with its Erlang VM's clock. After the OS
 * clock steps (an NTP step, or this machine's clock being set when a session starts), a VM
 * that was already running slews its clock toward the OS clock at up to 1 %, so for a while
 * its TTLs run up to 1 % fast. Measured on the shared broker on 2026-12-05: its clock was
 * 5.7 s behind the OS clock and closed the gap at 10 ms a second, and a message forwarded for
 * 4 s reached its lane 14 ms before its due time. A test that asserts "never early" against
 * the broker's timing allows this much and no more.
 */
export const BROKER_CLOCK_SLEW = 0.01;

/** The earliness a broker clock slewing at `BROKER_CLOCK_SLEW` can cause over `waitedMs` (rounded up, plus 1 ms for the clocks' resolution). */
export function brokerClockSlackMs(waitedMs: number): number {
  return Math.ceil(BROKER_CLOCK_SLEW * waitedMs) + 1;
}
