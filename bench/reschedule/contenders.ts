import { bullmqContender } from './bullmq';
import type { RescheduleContender } from './contender';
import { orbitCancelsContender, orbitContender } from './orbit';
import { rawAmqplibContender } from './raw-amqplib';

/** The name every other contender is compared with (the "× raw" column). */
export const BASELINE = 'raw-amqplib';
/** The peer orbit must beat (the "× bullmq" column). */
export const PEER = 'bullmq';

/**
 * Every contender of the reschedule benchmark, baseline first. To add one: write a file
 * exporting a `RescheduleContender` and list it here.
 */
export const contenders: readonly RescheduleContender[] = [rawAmqplibContender, orbitContender, orbitCancelsContender, bullmqContender];
