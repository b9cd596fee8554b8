import type { Command } from 'commander'
import type { NodeView, StatusView, VoterView } from '../api/types.ts'
import { SkeinError } from '../core/errors.ts'
import { readClusterKey, resolveDataDir } from '../peer/datadir.ts'
import { encodeJoinToken } from '../peer/token.ts'
import { connect, type ConnectFlags, withConnectFlags, json } from './connect.ts'
import type { CliDeps } from './program.ts'
import { formatDuration, formatKeyValues, formatLabels, formatTable, shortId } from './table.ts'

interface OutputFlags extends ConnectFlags {
  json?: boolean
  wide?: boolean
}


/** The `nodes` table: self marker, name, id, address, state, incarnation, age of the last change, labels. */
export function formatNodes(nodes: readonly NodeView[], now: number, wide = false): string {
  const rows = nodes.map((n) => [
    n.self ? '*' : '',
    n.name,
    wide ? n.id : shortId(n.id),
    n.address,
    n.state,
    n.drained ? 'DRAINED' : '',
    String(n.incarnation),
    formatDuration(now - Date.parse(n.since)),
    formatLabels(n.labels),
  ])
  return formatTable(['', 'NAME', 'ID', 'ADDRESS', 'STATE', 'DRAIN', 'INC', 'SINCE', 'LABELS'], rows)
}

/** The human `status` output. */
export function formatStatus(s: StatusView): string {
  const m = s.members
  return formatKeyValues([
    ['id', s.id],
    ['name', s.name],
    ['cluster', s.clusterId],
    ['address', s.address],
    ['labels', formatLabels(s.labels)],
    ['incarnation', String(s.incarnation)],
    ['members', `${m.alive} alive, ${m.suspect} suspect, ${m.dead} dead, ${m.left} left (${m.total} total)`],
    ['leader', s.leader ?? '(none)'],
    ['role', s.role],
    ['term', String(s.term)],
    ['commit', `${s.commitIndex} (applied ${s.appliedIndex})`],
    ['uptime', formatDuration(s.uptimeSeconds * 1000)],
    ['version', s.version],
  ])
}

/** The `voters` table: leader marker, name, id, role, match index, health, self marker. */
export function formatVoters(voters: readonly VoterView[], wide = false): string {
  const rows = voters.map((v) => [
    v.leader ? '*' : '',
    v.name ?? '?',
    wide ? v.id : shortId(v.id),
    v.role,
    v.match === null ? '-' : String(v.match),
    v.health,
    v.self ? '(this peer)' : '',
  ])
  return formatTable(['', 'NAME', 'ID', 'ROLE', 'MATCH', 'HEALTH', ''], rows)
}


/** `nodes`, `status`, `leave` (clients of the local agent) and `token` (reads the data dir). */
export function registerClusterCommands(program: Command, deps: CliDeps): void {
  withConnectFlags(program.command('nodes').description('list the cluster members as this peer sees them'))
    .option('--json', 'print a JSON array')
    .option('--wide', 'show full peer ids')
    .action(async (flags: OutputFlags) => {
      const nodes = await connect(flags, deps.env).nodes()
      deps.stdout(flags.json ? json(nodes) : formatNodes(nodes, deps.now(), flags.wide === true))
    })

  withConnectFlags(program.command('status').description('this peer’s id, cluster and member counts'))
    .option('--json', 'print a JSON object')
    .action(async (flags: OutputFlags) => {
      const status = await connect(flags, deps.env).status()
      deps.stdout(flags.json ? json(status) : formatStatus(status))
    })

  withConnectFlags(program.command('leave').description('leave the cluster gracefully; the agent then exits'))
    .option('--json', 'print a JSON object')
    .action(async (flags: OutputFlags) => {
      const client = connect(flags, deps.env)
      const res = await client.leave()
      const stopped = await client.waitGone(10_000)
      if (flags.json) deps.stdout(json({ ...res, stopped }))
      else deps.stdout(`${res.name} (${shortId(res.id)}) left the cluster; ${stopped ? 'the agent has stopped' : 'the agent is still stopping'}\n`)
    })

  const voters = withConnectFlags(program.command('voters').description('the Raft voters and learners, with their match index and health (* marks the leader)').enablePositionalOptions())
    .option('--json', 'print a JSON array')
    .option('--wide', 'show full peer ids')
    .action(async (flags: OutputFlags) => {
      const list = await connect(flags, deps.env).voters()
      deps.stdout(flags.json ? json(list) : formatVoters(list, flags.wide === true))
    })
  withConnectFlags(voters.command('remove').argument('<name>', 'node name or peer id').description('remove a voter or learner through the Raft log (the manual recovery; see docs/consensus.md)'))
    .option('--force', 'when no leader can be reached: change this peer’s own configuration (unsafe; only when a quorum is lost for good)')
    .option('--json', 'print a JSON object')
    .action(async (name: string, flags: OutputFlags & { force?: boolean }) => {
      const res = await connect(flags, deps.env).removeVoter(name, { force: flags.force === true })
      if (flags.json) deps.stdout(json(res))
      else deps.stdout(`${res.name ?? res.id} (${shortId(res.id)}) removed${res.forced ? ' by FORCE on this peer: run `skein voters` to check that a leader emerges' : ' through the log'}\n`)
    })

  program
    .command('token')
    .description('print the join token of this host’s cluster (a secret: it lets a host join)')
    .option('--data-dir <dir>', 'the data dir to read the cluster key from')
    .action((flags: { dataDir?: string }) => {
      const dir = resolveDataDir({ flag: flags.dataDir, env: deps.env })
      const key = readClusterKey(dir)
      if (key === undefined) throw new SkeinError('no-cluster', `no cluster in data dir ${dir}`, { hint: 'start one with `skein agent`, or pass --data-dir' })
      deps.stdout(`${encodeJoinToken(key)}\n`)
    })
}
