/**
 * The fault suite: `npm run test:faults`. Real processes and real (private) RabbitMQ nodes
 * die mid-run; see docs/RELIABILITY.md. The scenarios skip themselves under the main
 * `jest.config.js` (which also matches test/faults/) unless ORBIT_FAULT_SUITE is set, which
 * this config does for every worker.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/test/faults/**/*.test.ts'],
  setupFiles: ['<rootDir>/test/faults/setup-env.js'],
  globalSetup: '<rootDir>/test/faults/global-setup.js',
  globalTeardown: '<rootDir>/test/faults/global-teardown.js',
  // Each scenario sets its own, tighter bounds; this only catches a hang.
  testTimeout: 180000,
  // Two workers on two cores: one file with private broker nodes, one on the shared broker.
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/reporters/summary-line.js'],
};
