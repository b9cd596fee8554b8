import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Integration tests start real processes; keep them from starving each other on 2 cores.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
  },
})
