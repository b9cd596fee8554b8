import { defineConfig } from 'vitest/config'

// SKEIN_TEST_REPORT (set by .ci/run) adds a JSON report that CI turns into its summary line.
const report = process.env.SKEIN_TEST_REPORT

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The long cluster scenarios run with `npm run test:cluster` only.
    exclude: process.env.SKEIN_TEST_CLUSTER === 'all' ? ['**/node_modules/**'] : ['**/node_modules/**', 'test/cluster/extended.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Integration tests start real processes; keep them from starving each other on 2 cores.
    maxWorkers: 2,
    reporters: report ? ['default', ['json', { outputFile: report }]] : ['default'],
  },
})
