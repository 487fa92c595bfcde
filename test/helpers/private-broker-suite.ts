import { startPrivateBroker, type PrivateBroker, type PrivateBrokerOptions } from './private-broker';

/**
 * Starts a private RabbitMQ node before the test file's tests and stops it after them
 * (jest `beforeAll` / `afterAll`; call at the top level of the file). Returns a getter
 * for that node, to call inside tests; it throws when the node did not start. `options`
 * as for PrivateBroker (e.g. `{ rabbitmq: 4 }`; by default ORBIT_TEST_RABBITMQ decides).
 */
export function usePrivateBroker(options?: PrivateBrokerOptions): () => PrivateBroker {
  let broker: PrivateBroker | undefined;
  beforeAll(async () => {
    broker = await startPrivateBroker(undefined, options);
  }, 90_000);
  afterAll(async () => {
    await broker?.stop();
  }, 60_000);
  return () => {
    if (broker === undefined) throw new Error('the private broker is not running');
    return broker;
  };
}
