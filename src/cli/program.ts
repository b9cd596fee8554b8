import { Command, CommanderError } from 'commander'
import { SkeinError, errorMessage } from '../core/errors.ts'
import { VERSION } from '../core/version.ts'
import type { AgentOptions } from '../peer/agent.ts'
import { registerAgent } from './agent.ts'
import { registerClusterCommands } from './cluster.ts'
import { registerRunningCommands } from './running.ts'
import { registerServiceCommands } from './services.ts'
import { registerVersion } from './version.ts'

/** What the CLI needs from the outside world; tests pass fakes. */
export interface CliDeps {
  stdout(text: string): void
  stderr(text: string): void
  env: Record<string, string | undefined>
  now(): number
  /** Runs the agent until it stops (the `agent` command). */
  runAgent(options: AgentOptions): Promise<void>
}

/** Exit codes: 0 success, 1 failure, 2 usage error (bad flag, unknown command, missing token). */
export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

/** SkeinError codes that are the caller's mistake in how skein was invoked. */
const USAGE_CODES = new Set(['usage', 'bad-flag', 'bad-address', 'bad-token', 'token-required'])

/** The default dependencies: the real process, and the agent loaded on demand (it pulls in libp2p). */
export function processDeps(): CliDeps {
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    env: process.env,
    now: () => Date.now(),
    runAgent: async (options) => {
      const { runAgent } = await import('../peer/agent.ts')
      await runAgent(options)
    },
  }
}

/** The commander program with every command. Errors propagate (exitOverride); see runCli. */
export function buildProgram(deps: CliDeps): Command {
  const program = new Command()
  program
    .name('skein')
    .description('peer-to-peer container orchestrator for edge and homelab clusters')
    .version(VERSION, '-V, --version')
    .configureOutput({ writeOut: (s) => deps.stdout(s), writeErr: (s) => deps.stderr(s) })
    .exitOverride()
    .showSuggestionAfterError(true)
    // Options after a subcommand belong to it (`skein voters remove X --data-dir D`).
    .enablePositionalOptions()
  registerAgent(program, deps)
  registerClusterCommands(program, deps)
  registerServiceCommands(program, deps)
  registerRunningCommands(program, deps)
  registerVersion(program, deps)
  return program
}

/** The exit code for an error thrown by a command. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE
  if (err instanceof SkeinError && USAGE_CODES.has(err.code)) return EXIT_USAGE
  return EXIT_FAILURE
}

/**
 * Run the CLI on `args` (without the node and script paths) and return the exit code.
 * SkeinErrors are printed as one line, `skein: <message> (<hint>)`; commander prints its own
 * usage errors.
 */
export async function runCli(args: string[], deps: CliDeps = processDeps()): Promise<number> {
  const program = buildProgram(deps)
  if (args.length === 0) {
    deps.stdout(program.helpInformation())
    return EXIT_USAGE
  }
  try {
    await program.parseAsync(args, { from: 'user' })
    return EXIT_OK
  } catch (err) {
    if (!(err instanceof CommanderError)) deps.stderr(`skein: ${oneLine(errorMessage(err))}\n`)
    return exitCodeOf(err)
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim()
}
