#!/usr/bin/env -S node --max-semi-space-size=1
// The skein executable: the agent daemon and the CLI in one. See docs/cli.md.
// No top-level await: the same entry is bundled as CommonJS for the single binary (scripts/build.ts).
import { runCli } from '../src/cli/program.ts'

const args = process.argv.slice(2)
runCli(args).then(
  (code) => {
    if (args[0] === 'agent') {
      // The agent has stopped and flushed its logs; a library's stray timer or socket must not keep
      // the process alive after "left the cluster" or SIGTERM.
      process.exit(code)
    }
    process.exitCode = code
    setTimeout(() => process.exit(code), 2000).unref()
  },
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
