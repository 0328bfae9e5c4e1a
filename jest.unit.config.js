import base from './jest.config.js';

/**
 * The fast layer (`npm run test:unit`): test/unit only, no etcd. It has no globalSetup, which is
 * where the full run prepares etcd; the transform is the full run's, so both compile alike.
 */
export default {
  testEnvironment: base.testEnvironment,
  extensionsToTreatAsEsm: base.extensionsToTreatAsEsm,
  moduleNameMapper: base.moduleNameMapper,
  transform: base.transform,
  testMatch: ['<rootDir>/test/unit/**/*.spec.ts'],
  testTimeout: 10000,
};
