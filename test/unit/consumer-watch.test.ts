import { judgeStarvedLane } from '../../src/worker/consumer-watch';

const INTERVAL = 5000;

describe('judgeStarvedLane: when a lane that gets nothing has its consumer restarted', () => {
  test('no ready message in its queues: fine (an idle lane with an empty queue), and any sighting is dropped', () => {
    expect(judgeStarvedLane(undefined, 1000, [], 10_000, INTERVAL)).toEqual({ verdict: 'fine' });
    expect(judgeStarvedLane({ starvedSince: 1000, at: 6000 }, 1000, [], 12_000, INTERVAL)).toEqual({ verdict: 'fine' });
  });

  test('a first look with ready messages only watches: the delivery may be on its way', () => {
    expect(judgeStarvedLane(undefined, 1000, ['q'], 6000, INTERVAL)).toEqual({ verdict: 'watch', sighting: { starvedSince: 1000, at: 6000 } });
  });

  test('a second look one round later, in the same stretch without deliveries: restart', () => {
    expect(judgeStarvedLane({ starvedSince: 1000, at: 6000 }, 1000, ['q'], 11_000, INTERVAL)).toEqual({ verdict: 'restart' });
    // A round whose timer fired early still counts as the next round.
    expect(judgeStarvedLane({ starvedSince: 1000, at: 6000 }, 1000, ['q'], 6000 + INTERVAL / 2, INTERVAL)).toEqual({ verdict: 'restart' });
  });

  test('a second look too soon keeps the first sighting', () => {
    const first = { starvedSince: 1000, at: 6000 };
    expect(judgeStarvedLane(first, 1000, ['q'], 6000 + INTERVAL / 2 - 1, INTERVAL)).toEqual({ verdict: 'watch', sighting: first });
  });

  test('a delivery in between starts a new stretch: the count starts again', () => {
    expect(judgeStarvedLane({ starvedSince: 1000, at: 6000 }, 7000, ['q'], 12_000, INTERVAL)).toEqual({ verdict: 'watch', sighting: { starvedSince: 7000, at: 12_000 } });
  });
});
