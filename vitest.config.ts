import { defineConfig } from 'vitest/config'

// SKEIN_TEST_REPORT (set by .ci/run) adds a JSON report that CI turns into its summary line.
const report = process.env.SKEIN_TEST_REPORT

// The heavy files (a dockerd per namespace host; the binary, the image and a compose cluster)
// run after everything else, one at a time, so that they never starve the real-process tests
// on 2 cores. The long cluster scenarios run with `npm run test:cluster` only.
const HEAVY = ['test/cluster/*.test.ts', 'test/integration/package.test.ts']
const EXTENDED = process.env.SKEIN_TEST_CLUSTER === 'all' ? [] : ['test/cluster/extended.test.ts']

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Integration tests start real processes; keep them from starving each other on 2 cores.
    maxWorkers: 2,
    reporters: report ? ['default', ['json', { outputFile: report }]] : ['default'],
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'], exclude: ['**/node_modules/**', ...HEAVY], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'heavy', include: HEAVY, exclude: ['**/node_modules/**', ...EXTENDED], fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
})
