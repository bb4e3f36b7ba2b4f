import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/**/*.test.ts',
      'runtime/**/*.test.ts',
      'supervisors/**/*.test.ts',
      'actors/**/*.test.ts',
      'cluster/**/*.test.ts',
    ],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    globalSetup: ['test/setup/services.ts'],
  },
});
