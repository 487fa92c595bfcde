import { ConfigError } from '../../src/errors';

/**
 * Runs `fn` and expects it to throw a {@link ConfigError}; returns that error so the test
 * can check its message. Fails the test when `fn` returns or throws anything else.
 */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
