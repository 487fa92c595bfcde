import { brokerFeatures, brokerProblems, parseVersion } from '../../src/topology/broker-features';
import { classifyDrift, quorumStoreDrift, unsafeToLook } from '../../src/topology/drift';
import { buildTopology, type QueueSpec } from '../../src/topology/build';
import { inequivalentArgument } from '../../src/amqp/topology-asserter';
import { topologyConfig } from '../helpers/topology-config';

describe('brokerFeatures', () => {
  it.each<[string, boolean, boolean, boolean]>([
    // version, x-queue-mode acts, 4.x (quorum default limit and priorities, one classic version, no global QoS)
    ['3.10.8', true, false, true],
    ['3.11.28', true, false, true],
    ['3.12.0', false, false, true],
    ['3.13.7', false, false, true],
    ['4.0.5', false, true, false],
    ['4.3.0', false, true, false],
    ['10.0.0', false, true, false],
  ])('RabbitMQ %s', (version, queueMode, four, globalQos) => {
    const f = brokerFeatures(version);
    expect(f).toEqual({ version, queueMode, queueVersion: !four, quorumDefaultDeliveryLimit: four, quorumPriorities: four, globalQos });
  });

  it('takes a version it cannot read for a current broker (the safe guess)', () => {
    for (const v of [undefined, '', 'rabbit', 'v4']) {
      expect(brokerFeatures(v)).toEqual({ version: 'unknown', queueMode: false, queueVersion: false, quorumDefaultDeliveryLimit: true, quorumPriorities: true, globalQos: false });
    }
    expect(parseVersion('4.0.5+1.g123')).toEqual([4, 0]);
  });
});

describe('brokerProblems', () => {
  const lanes = topologyConfig(4, '1s', 'classic', [{ name: 'q', queueType: 'quorum', maxPriority: 9 }, { name: 'z', queueType: 'quorum', maxPriority: 0 }, { name: 'c' }]).lanes;

  it('refuses a quorum lane with priorities on 3.x, naming the key and the fix', () => {
    expect(brokerProblems(lanes, brokerFeatures('3.10.8'))).toEqual([
      {
        path: 'lanes[0].maxPriority',
        message:
          'lanes[0].maxPriority is 9 but RabbitMQ 3.10.8 quorum queues have no priorities (4.0 and later have two levels): ' +
          'set "maxPriority": 0, or "queueType": "classic" for lane "q"',
      },
    ]);
  });

  it('accepts it on 4.x', () => {
    expect(brokerProblems(lanes, brokerFeatures('4.0.5'))).toEqual([]);
  });
});

describe('classifyDrift', () => {
  const t = buildTopology(topologyConfig(4, '1s', 'quorum', [{ name: 'a' }]), brokerFeatures('4.0.5'));
  const q = (role: QueueSpec['role']): QueueSpec => t.queues.find((x) => x.role === role)!;

  it('ignores an old x-queue-mode on a broker that ignores it', () => {
    const d = classifyDrift(q('lane'), 'x-queue-mode', brokerFeatures('4.0.5'));
    expect(d).toMatchObject({ queue: 'ns.lane.a', severity: 'ignored', argument: 'x-queue-mode' });
    expect(unsafeToLook(d)).toBe(false);
  });

  it('calls a 4.x quorum queue without orbit\'s delivery limit risky, and unsafe to look into', () => {
    const d = classifyDrift(q('dead'), 'x-delivery-limit', brokerFeatures('4.0.5'));
    expect(d.severity).toBe('risky');
    expect(d.why).toContain('default of 20');
    expect(unsafeToLook(d)).toBe(true);
  });

  it('ignores a missing delivery limit on 3.x, which has no default one', () => {
    expect(classifyDrift(q('dead'), 'x-delivery-limit', brokerFeatures('3.10.8')).severity).toBe('ignored');
  });

  it('calls a changed TTL, priority or dead-letter target a conflict', () => {
    for (const arg of ['x-message-ttl', 'x-max-priority', 'x-dead-letter-exchange']) {
      expect(classifyDrift(q('delay'), arg, brokerFeatures('4.0.5')).severity).toBe('conflict');
    }
  });

  // A namespace from when classic was the default delay.queueType: the broker names whichever
  // differing argument comes first in its own order (3.10: x-overflow for a delay level).
  it.each(['x-queue-type', 'x-queue-mode', 'x-queue-version', 'x-overflow', 'x-dead-letter-strategy'])(
    'a classic delay level where quorum is wanted (named by %s) is used as it is, with a warning; a quorum lane met by a classic queue is a conflict',
    (arg) => {
      for (const broker of ['3.10.8', '4.0.5']) {
        const level = classifyDrift(q('delay'), arg, brokerFeatures(broker));
        expect(level.severity).toBe('risky');
        expect(level.why).toContain('broker crash');
        expect(unsafeToLook(level)).toBe(false);
        const lane = classifyDrift({ name: 'ns.lane.q', role: 'lane', arguments: { 'x-queue-type': 'quorum' } }, arg, brokerFeatures(broker));
        expect(lane.severity).toBe('conflict');
        // deadLetters.queueType: quorum met by a classic dead queue: it keeps working, on one node.
        const dead = classifyDrift({ name: 'ns.dead', role: 'dead', arguments: { 'x-queue-type': 'quorum' } }, arg, brokerFeatures(broker));
        expect(dead).toMatchObject({ severity: 'ignored', existingType: 'classic' });
      }
    },
  );

  it('a quorum dead queue of an earlier orbit (found by the asserter\'s probe) is used as it is', () => {
    const d = quorumStoreDrift(q('dead'), 'x-queue-type');
    expect(d).toMatchObject({ queue: 'ns.dead', severity: 'ignored', argument: 'x-queue-type' });
    expect(unsafeToLook(d)).toBe(false);
  });
});

describe('inequivalentArgument', () => {
  it('reads the argument out of the broker\'s PRECONDITION_FAILED text', () => {
    const err = Object.assign(
      new Error(
        `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg 'x-queue-mode' for queue 'q' in vhost '/': received none but current is the value 'lazy' of type 'longstr'"`,
      ),
      { code: 406 },
    );
    expect(inequivalentArgument(err)).toBe('x-queue-mode');
  });

  it('is undefined for any other error', () => {
    expect(inequivalentArgument(Object.assign(new Error("inequivalent arg 'x'"), { code: 404 }))).toBeUndefined();
    expect(inequivalentArgument(Object.assign(new Error('PRECONDITION_FAILED - invalid arg'), { code: 406 }))).toBeUndefined();
    expect(inequivalentArgument(undefined)).toBeUndefined();
  });
});
