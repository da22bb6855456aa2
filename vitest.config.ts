import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // WebGPU (Dawn) and gpu.js hold native state; forks isolate them per file.
    pool: 'forks',
    maxWorkers: 2,
  },
});
