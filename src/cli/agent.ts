import { Option, type Command } from 'commander'
import type { LevelWithSilent } from 'pino'
import { LOG_LEVELS } from '../core/logger.ts'
import { DEFAULT_API, DEFAULT_LISTEN, resolveDataDir } from '../peer/datadir.ts'
import type { AgentOptions } from '../peer/agent.ts'
import { collectJoin, collectLabel, dialAddress, joinToken, listenAddress, nodeName } from './parse.ts'
import type { CliDeps } from './program.ts'

interface AgentFlags {
  dataDir?: string
  listen?: string
  advertise?: string
  api?: string
  join?: string[]
  token?: string
  name?: string
  label?: Record<string, string>
  logLevel?: LevelWithSilent
}

/** `skein agent`: run the peer in the foreground until SIGINT/SIGTERM or `skein leave`. */
export function registerAgent(program: Command, deps: CliDeps): void {
  program
    .command('agent')
    .description('run this host’s peer (creates a cluster, or joins one with --join and --token)')
    .option('--data-dir <dir>', 'where this peer keeps its identity, keys and state')
    .option('--listen <host:port>', `peer address to listen on (default ${DEFAULT_LISTEN}; remembered)`, listenAddress)
    .option('--advertise <host:port>', 'address other peers dial (default: the listen address, or this host’s first IPv4 address; remembered)', dialAddress)
    .option('--api <host:port>', `HTTP API address (default ${DEFAULT_API}; remembered)`, listenAddress)
    .option('--join <addr>', 'a member to join through: host[:port] or multiaddr (repeatable)', collectJoin)
    .option('--token <token>', 'the cluster’s join token (`skein token` on a member prints it)', joinToken)
    .option('--name <name>', 'node name (default: the host name; remembered)', nodeName)
    .option('--label <key=value>', 'a node label (repeatable; replaces the remembered labels)', collectLabel)
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .action(async (flags: AgentFlags) => {
      const options: AgentOptions = {
        dataDir: resolveDataDir({ flag: flags.dataDir, env: deps.env }),
        ...(flags.listen === undefined ? {} : { listen: flags.listen }),
        ...(flags.advertise === undefined ? {} : { advertise: flags.advertise }),
        ...(flags.api === undefined ? {} : { api: flags.api }),
        ...(flags.join === undefined ? {} : { join: flags.join }),
        ...(flags.token === undefined ? {} : { token: flags.token }),
        ...(flags.name === undefined ? {} : { name: flags.name }),
        ...(flags.label === undefined ? {} : { labels: flags.label }),
        logLevel: flags.logLevel ?? 'info',
      }
      await deps.runAgent(options)
    })
}
