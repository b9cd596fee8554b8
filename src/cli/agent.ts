import { Option, type Command } from 'commander'
import type { LevelWithSilent } from 'pino'
import { resolveRaftTiming } from '../consensus/timing.ts'
import { LOG_LEVELS } from '../core/logger.ts'
import { DEFAULT_API, DEFAULT_LISTEN, resolveDataDir, type RaftTimingSettings } from '../peer/datadir.ts'
import type { AgentOptions } from '../peer/agent.ts'
import { collectJoin, collectLabel, dialAddress, joinToken, listenAddress, nodeName, positiveInt, restartGrace, voterCount } from './parse.ts'
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
  voters?: number
  raftTiming?: string
  raftTickMs?: number
  raftElectionTicks?: number
  raftHeartbeatTicks?: number
  restartGrace?: number
  debugApi?: boolean
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
    .option('--voters <n>', 'most Raft voters: 1, 3, 5, 7 or 9 (default 5; remembered; the leader’s value applies)', voterCount)
    .addOption(new Option('--raft-timing <preset>', 'Raft timing preset: lan (heartbeat 100 ms, election 0.5–1 s) or wan (300 ms, 2–4 s) (remembered)').choices(['lan', 'wan']))
    .option('--raft-tick-ms <ms>', 'Raft tick period in ms (overrides the preset; remembered)', positiveInt)
    .option('--raft-election-ticks <n>', 'election timeout in ticks: a follower campaigns after n to 2n silent ticks (remembered)', positiveInt)
    .option('--raft-heartbeat-ticks <n>', 'leader heartbeat interval in ticks (remembered)', positiveInt)
    .option('--restart-grace <duration>', 'after a graceful stop (SIGTERM/SIGINT, not `skein leave`), how long this host’s replicas wait for it before they are placed elsewhere; 0 disables (default 30s; remembered)', restartGrace)
    .addOption(new Option('--debug-api', 'serve the debug routes: /v1/debug/propose, /v1/debug/block, /v1/debug/unblock (tests and benchmarks only)').hideHelp())
    .action(async (flags: AgentFlags) => {
      const raftTiming: RaftTimingSettings | undefined =
        flags.raftTiming === undefined && flags.raftTickMs === undefined && flags.raftElectionTicks === undefined && flags.raftHeartbeatTicks === undefined
          ? undefined
          : {
              ...(flags.raftTiming === undefined ? {} : { preset: flags.raftTiming }),
              ...(flags.raftTickMs === undefined ? {} : { tickMs: flags.raftTickMs }),
              ...(flags.raftElectionTicks === undefined ? {} : { electionTicks: flags.raftElectionTicks }),
              ...(flags.raftHeartbeatTicks === undefined ? {} : { heartbeatTicks: flags.raftHeartbeatTicks }),
            }
      if (raftTiming !== undefined) resolveRaftTiming(raftTiming)
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
        ...(flags.voters === undefined ? {} : { voters: flags.voters }),
        ...(raftTiming === undefined ? {} : { raftTiming }),
        ...(flags.restartGrace === undefined ? {} : { restartGraceMs: flags.restartGrace }),
        ...(flags.debugApi === true ? { debugApi: true } : {}),
      }
      await deps.runAgent(options)
    })
}
