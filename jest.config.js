/** Jest runs the TypeScript sources as ESM through SWC (no type check here: `npm run typecheck` does that). */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testPathIgnorePatterns: ['/node_modules/', '/__tests__/support/'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2024' },
        module: { type: 'es6' },
      },
    ],
  },
  testTimeout: 60_000,
  globalSetup: '<rootDir>/__tests__/support/global-setup.js',
  // Two cores: keep one free for the servers the tests start (Slack, GitHub, kube-sim, PostgreSQL).
  maxWorkers: 2,
};
