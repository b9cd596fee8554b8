import type { Command } from 'commander'
import { COMMIT, VERSION } from '../core/version.ts'
import { json } from './connect.ts'
import type { CliDeps } from './program.ts'

/** What `skein version --json` prints. */
export interface VersionView {
  version: string
  /** Short git commit of the build (`-dirty` if the tree had changes), or `unknown`. */
  commit: string
  /** The Node.js runtime inside (the single binary embeds its own). */
  node: string
  platform: string
  arch: string
}

export function versionView(): VersionView {
  return { version: VERSION, commit: COMMIT, node: process.version, platform: process.platform, arch: process.arch }
}

/** `skein version [--json]`: the version, and the commit this build came from. Needs no agent. */
export function registerVersion(program: Command, deps: CliDeps): void {
  program
    .command('version')
    .description('print the version and the git commit this build came from')
    .option('--json', 'print JSON')
    .action((flags: { json?: boolean }) => {
      const v = versionView()
      deps.stdout(flags.json === true ? json(v) : `skein ${v.version} (commit ${v.commit}, node ${v.node}, ${v.platform}-${v.arch})\n`)
    })
}
