import { Counter, Gauge, Registry } from 'prom-client';
import { RateMeter } from '../../src/http/ui/rates';

describe('RateMeter', () => {
  it('turns two readings of the daemon counters into per-lane rates, and reports blocked connections', async () => {
    const registry = new Registry();
    const messages = new Counter({ name: 'orbit_messages_total', help: 'h', labelNames: ['lane', 'outcome'], registers: [registry] });
    const inFlight = new Gauge({ name: 'orbit_in_flight', help: 'h', labelNames: ['lane'], registers: [registry] });
    const blocked = new Gauge({ name: 'orbit_amqp_blocked', help: 'h', labelNames: ['connection'], registers: [registry] });
    messages.inc({ lane: 'a', outcome: 'done' }, 10);
    inFlight.set({ lane: 'a' }, 3);
    blocked.set({ connection: 'publish' }, 0);
    const meter = new RateMeter(registry);
    const first = await meter.read(1_000);
    expect(first.get('a')).toEqual({ runsPerSecond: 0, failuresPerSecond: 0, meanLatenessSeconds: null, inFlight: 3 });
    expect(meter.blocked).toEqual([]);

    messages.inc({ lane: 'a', outcome: 'done' }, 16);
    messages.inc({ lane: 'a', outcome: 'retried' }, 2);
    messages.inc({ lane: 'a', outcome: 'dead' }, 2);
    blocked.set({ connection: 'publish' }, 1);
    // Closer than a second to the last reading: the last rates again.
    expect((await meter.read(1_500)).get('a')?.runsPerSecond).toBe(0);
    const second = await meter.read(3_000);
    expect(second.get('a')).toMatchObject({ runsPerSecond: 10, failuresPerSecond: 2 });
    expect(meter.blocked).toEqual(['publish']);
  });
});
