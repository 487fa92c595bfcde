import type { ReplayFilter, ReplayResult } from '../../src/dlq/dead-letter-queue';
import { BrokerError } from '../../src/errors';
import { UnroutableReturn, unroutableLook } from '../../src/worker/unroutable-return';
import { capturingLogger } from '../helpers/capturing-logger';
import { waitFor } from '../helpers/wait';

/** A dead-letter queue whose replays the test settles: each look is recorded with its filter. */
function fakeDlq() {
  const looks: Array<{ filter: ReplayFilter | undefined; settle: (r: Partial<ReplayResult> | Error) => void }> = [];
  return {
    looks,
    dlq: {
      queueName: () => 'ns.unroutable',
      replay: (_which: string, filter?: ReplayFilter) =>
        new Promise<ReplayResult>((resolve, reject) => {
          looks.push({
            filter,
            settle: (r) => (r instanceof Error ? reject(r) : resolve({ replayed: 0, skipped: 0, left: 0, unknownLanes: [], badBundles: 0, ...r })),
          });
        }),
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('unroutableLook', () => {
  test('only growth past what the last look left is new; past the bound it is too many', () => {
    expect(unroutableLook(0, 0, 1000)).toBe('nothing new');
    expect(unroutableLook(3, 3, 1000)).toBe('nothing new');
    expect(unroutableLook(2, 3, 1000)).toBe('nothing new');
    expect(unroutableLook(4, 3, 1000)).toBe('look');
    expect(unroutableLook(1000, 0, 1000)).toBe('look');
    expect(unroutableLook(1001, 0, 1000)).toBe('too many');
  });
});

describe('UnroutableReturn', () => {
  test('a grown queue gets one look once every lane consumes; what it left there is not looked at again', async () => {
    const { dlq, looks } = fakeDlq();
    let ready = false;
    const returned: number[] = [];
    const r = new UnroutableReturn({ dlq, ready: () => ready, logger: capturingLogger().logger, gapMs: 0, returned: (n) => void returned.push(n) });
    r.sampled(0);
    r.sampled(5);
    await tick();
    expect(looks).toHaveLength(0); // waiting for the lanes
    ready = true;
    await waitFor(() => looks.length === 1, 5000, 'the look once the lanes consume', 10);
    expect(looks[0]!.filter).toEqual({ scanLimit: 1000 });
    r.sampled(9); // during the look: ignored
    looks[0]!.settle({ replayed: 3, left: 2, unknownLanes: ['ghost'] });
    await tick();
    r.sampled(2); // what the look left
    await tick();
    expect(looks).toHaveLength(1);
    r.sampled(3); // one more arrived
    await tick();
    expect(looks).toHaveLength(2);
    looks[1]!.settle({ replayed: 1, left: 2 });
    await r.stop();
    // Each look that sent messages back reports how many.
    expect(returned).toEqual([3, 1]);
  });

  test('looks at most once per gap; a failed look is tried again at a later sample', async () => {
    const { dlq, looks } = fakeDlq();
    const r = new UnroutableReturn({ dlq, ready: () => true, logger: capturingLogger().logger, gapMs: 200 });
    r.sampled(4);
    await tick();
    expect(looks).toHaveLength(1);
    looks[0]!.settle(new Error('channel closed'));
    await tick();
    r.sampled(4);
    await tick();
    expect(looks).toHaveLength(1); // too soon
    await new Promise((resolve) => setTimeout(resolve, 400));
    r.sampled(4);
    await tick();
    expect(looks).toHaveLength(2);
    looks[1]!.settle({ replayed: 4, left: 0 });
    await r.stop();
  });

  test('more than the bound: a warning (once), no look', async () => {
    const { dlq, looks } = fakeDlq();
    const { logger, lines } = capturingLogger();
    const r = new UnroutableReturn({ dlq, ready: () => true, logger, max: 10, gapMs: 0 });
    r.sampled(11);
    r.sampled(12);
    await tick();
    expect(looks).toHaveLength(0);
    expect(lines.filter((l) => l.level === 'warn' && String(l.msg).includes('orbit dlq replay --queue unroutable'))).toHaveLength(1);
    await r.stop();
  });

  test('a quorum queue without the delivery limit is not looked at again; stop waits for the look and ends the looks', async () => {
    const { dlq, looks } = fakeDlq();
    const { logger, lines } = capturingLogger();
    const r = new UnroutableReturn({ dlq, ready: () => true, logger, gapMs: 0 });
    r.sampled(1);
    await tick();
    looks[0]!.settle(new BrokerError('needs migrate', { code: 'QUEUE_NEEDS_MIGRATION' }));
    await tick();
    r.sampled(2);
    await tick();
    expect(looks).toHaveLength(1);
    expect(lines.some((l) => l.level === 'warn' && String(l.msg).includes('not looked through'))).toBe(true);

    const s = new UnroutableReturn({ dlq, ready: () => true, logger, gapMs: 0 });
    s.sampled(1);
    await tick();
    let stopped = false;
    const stopping = s.stop().then(() => (stopped = true));
    await tick();
    expect(stopped).toBe(false);
    looks[1]!.settle({ replayed: 1 });
    await stopping;
    s.sampled(5);
    await tick();
    expect(looks).toHaveLength(2);
  });
});
