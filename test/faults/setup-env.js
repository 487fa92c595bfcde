// Runs in every fault-suite test file before it loads (jest.faults.config.js `setupFiles`).
process.env.ORBIT_FAULT_SUITE = '1';
