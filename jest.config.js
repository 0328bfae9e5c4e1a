/** Jest in native ESM mode: Nest 12 ships ESM only. Run through `npm test`. */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    // TS151002 only advises isolatedModules; the global setup needs full (CommonJS-capable) transpiling.
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { ignoreCodes: [151002] } }],
  },
  testMatch: ['<rootDir>/test/**/*.spec.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 30000,
  // On 2 cores Jest runs every suite in its main process (one worker = in band), so one handle a
  // suite leaves open (a gRPC channel, a child's pipe) would keep the run alive after its summary:
  // CI once waited out its 90 minutes that way. The global teardown still stops every etcd by PID.
  forceExit: true,
  reporters: ['default', '<rootDir>/test/support/faults-reporter.cjs', '<rootDir>/test/support/summary-reporter.cjs'],
};
