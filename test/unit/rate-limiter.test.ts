/**
 * A lane's rate limit on a fake clock (jest's modern fake timers drive both `Date.now`,
 * which the limiter and its bucket read, and `setTimeout`, which wakes the waiters):
 * the burst never exceeds `max`, waiters pass first come first served, the long-run rate is
 * `max` per `per`, and the reported wait is the time spent waiting.
 */
import { RateLimiter } from '../../src/worker/rate-limiter';

beforeEach(() => {
  jest.useFakeTimers({ now: 1_700_000_000_000 });
});
afterEach(() => {
  jest.useRealTimers();
});

/** Starts `n` acquires in order; records when (fake ms since `t0`) and with what wait each one passed. */
function acquireMany(limiter: RateLimiter, n: number, t0 = Date.now()): { order: number[]; at: number[]; waited: number[] } {
  const out = { order: [] as number[], at: new Array<number>(n), waited: new Array<number>(n) };
  for (let i = 0; i < n; i++) {
    void limiter.acquire().then((waited) => {
      out.order.push(i);
      out.at[i] = Date.now() - t0;
      out.waited[i] = waited;
    });
  }
  return out;
}

/** Lets resolved promises run their `then` callbacks. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

test('the first `max` pass at once with no wait; the next one waits for a token', async () => {
  const limiter = new RateLimiter(5, 1000);
  const r = acquireMany(limiter, 6);
  await flush();
  expect(r.order).toEqual([0, 1, 2, 3, 4]);
  expect(r.waited.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);

  await jest.advanceTimersByTimeAsync(199);
  expect(r.order).toHaveLength(5);
  await jest.advanceTimersByTimeAsync(1);
  expect(r.order).toEqual([0, 1, 2, 3, 4, 5]);
  expect(r.at[5]).toBe(200);
  expect(r.waited[5]).toBe(200);
});

test('waiters pass in FIFO order, one token interval apart (20/s → every 50 ms)', async () => {
  const limiter = new RateLimiter(20, 1000);
  const r = acquireMany(limiter, 60);
  await jest.advanceTimersByTimeAsync(5000);
  expect(r.order).toEqual([...Array(60).keys()]);
  // 20 at once, then the k-th waiter at k × 50 ms.
  expect(r.at.slice(0, 20)).toEqual(new Array(20).fill(0));
  for (let k = 1; k <= 40; k++) expect(r.at[19 + k]).toBe(k * 50);
  // Each waiter reports exactly the time it waited.
  expect(r.waited).toEqual(r.at);
});

test('a newcomer queues behind those already waiting', async () => {
  const limiter = new RateLimiter(1, 100);
  const r = acquireMany(limiter, 3); // #0 passes, #1 and #2 wait
  await flush();
  expect(r.order).toEqual([0]);
  const late: string[] = [];
  await jest.advanceTimersByTimeAsync(100); // #1 passes at 100
  void limiter.acquire().then(() => late.push('newcomer'));
  await jest.advanceTimersByTimeAsync(100); // #2 at 200: it was first in line
  expect(r.order).toEqual([0, 1, 2]);
  expect(late).toEqual([]);
  await jest.advanceTimersByTimeAsync(100);
  expect(late).toEqual(['newcomer']);
});

test('no burst beyond max after a long idle period: tokens do not pile up past max', async () => {
  const limiter = new RateLimiter(10, 1000);
  await flush();
  jest.advanceTimersByTime(60_000); // a minute idle would be 600 tokens without the cap
  const r = acquireMany(limiter, 30);
  await flush();
  expect(r.order).toHaveLength(10);
  await jest.advanceTimersByTimeAsync(99);
  expect(r.order).toHaveLength(10);
  await jest.advanceTimersByTimeAsync(1);
  expect(r.order).toHaveLength(11);
  await jest.advanceTimersByTimeAsync(10_000);
  expect(r.order).toHaveLength(30);
  // In any window of `per`, at most max (the full bucket) + max (the refill) − 1 start.
  for (let i = 0; i < r.at.length; i++) {
    const inWindow = r.at.filter((t) => t >= r.at[i]! && t < r.at[i]! + 1000).length;
    expect(inWindow).toBeLessThanOrEqual(19);
  }
});

test('the long-run rate is max per `per`: 1000 acquires at 50 per 2 s take (1000 − 50) / 25 s', async () => {
  const limiter = new RateLimiter(50, 2000);
  const r = acquireMany(limiter, 1000);
  await jest.advanceTimersByTimeAsync(38_000 - 1);
  expect(r.order.length).toBeLessThan(1000);
  await jest.advanceTimersByTimeAsync(1);
  expect(r.order).toHaveLength(1000);
  expect(r.at[999]).toBe(38_000);
  expect(r.order).toEqual([...Array(1000).keys()]);
  // Counted starts never exceed burst + elapsed × rate.
  r.at.forEach((t, i) => expect(i + 1).toBeLessThanOrEqual(50 + Math.floor((t * 25) / 1000)));
});

test('rates that do not divide evenly still average out: 3 per second, one every 333⅓ ms', async () => {
  const limiter = new RateLimiter(3, 1000);
  const r = acquireMany(limiter, 33);
  await jest.advanceTimersByTimeAsync(20_000);
  expect(r.order).toHaveLength(33);
  // The 30 waiters need 30 tokens = 10 s; timer rounding (ceil to whole ms) may add a ms or two.
  expect(r.at[32]).toBeGreaterThanOrEqual(10_000);
  expect(r.at[32]).toBeLessThanOrEqual(10_002);
  for (let k = 1; k <= 30; k++) {
    expect(r.at[2 + k]).toBeGreaterThanOrEqual(Math.floor((k * 1000) / 3));
    expect(r.at[2 + k]).toBeLessThanOrEqual(Math.ceil((k * 1000) / 3) + 2);
  }
});

test('a slow limit (1 per minute) makes the second caller wait the whole minute', async () => {
  const limiter = new RateLimiter(1, 60_000);
  const r = acquireMany(limiter, 2);
  await jest.advanceTimersByTimeAsync(59_999);
  expect(r.order).toEqual([0]);
  await jest.advanceTimersByTimeAsync(1);
  expect(r.order).toEqual([0, 1]);
  expect(r.waited[1]).toBe(60_000);
});

test('tokens refill while nobody waits, and no timer is left behind once the queue is empty', async () => {
  const limiter = new RateLimiter(4, 1000);
  const first = acquireMany(limiter, 8);
  await jest.advanceTimersByTimeAsync(1000);
  expect(first.order).toHaveLength(8);
  expect(jest.getTimerCount()).toBe(0);

  jest.advanceTimersByTime(500); // 2 tokens back
  const second = acquireMany(limiter, 3);
  await flush();
  expect(second.order).toEqual([0, 1]);
  expect(jest.getTimerCount()).toBe(1);
  await jest.advanceTimersByTimeAsync(250);
  expect(second.order).toEqual([0, 1, 2]);
  expect(second.waited[2]).toBe(250);
  expect(jest.getTimerCount()).toBe(0);
});
