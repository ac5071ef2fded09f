import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites start real processes on a 2-core machine: keep files from starving each other.
    maxConcurrency: 1,
    fileParallelism: false,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
