import { Option, type Command } from 'commander'
import { stringify } from 'yaml'
import type { ReplicaView } from '../api/replicas.ts'
import type { HistoryEntryView, ServiceDetailView, ServiceView } from '../api/types.ts'
import { SkeinError } from '../core/errors.ts'
import { formatChange, loadSpecFileForCli, planIsEmpty, renderPlan, type SpecFormat } from './spec-file.ts'
import { connect, type ConnectFlags, withConnectFlags, json } from './connect.ts'
import type { CliDeps } from './program.ts'
import { formatDuration, formatKeyValues, formatTable } from './table.ts'

interface OutputFlags extends ConnectFlags {
  json?: boolean
}

interface ApplyFlags extends OutputFlags {
  file: string
  dryRun?: boolean
  prune?: boolean
  stack?: string
  format?: SpecFormat
}



/** The `services` table. */
export function formatServices(list: readonly ServiceView[], now: number): string {
  const rows = list.map((s) => [s.name, s.stack, s.image, s.mode, `${s.running}/${s.desired}`, s.replicas === null ? 'global' : String(s.replicas), String(s.revision), formatDuration(now - Date.parse(s.updatedAt)), s.writer])
  const table = formatTable(['NAME', 'STACK', 'IMAGE', 'MODE', 'RUNNING', 'REPLICAS', 'REV', 'UPDATED', 'BY'], rows)
  const notes = list.filter((s) => s.explain !== null && s.explain !== '').map((s) => `${s.name}: ${s.explain}\n`)
  return notes.length === 0 ? table : `${table}\n${notes.join('')}`
}

/** The `ps` table: one row per replica; pending ones carry the leader's explanation when known. */
export function formatReplicas(list: readonly ReplicaView[], now: number): string {
  const rows = list.map((r) => [
    `${r.service}.${r.slot}`,
    r.host ?? '-',
    r.state,
    r.health,
    r.containerId === null ? '-' : r.containerId.slice(0, 12),
    r.startedAt === null ? '-' : formatDuration(now - Date.parse(r.startedAt)),
    String(r.restarts),
    r.explain ?? '',
  ])
  return formatTable(['REPLICA', 'HOST', 'STATE', 'HEALTH', 'CONTAINER', 'AGE', 'RESTARTS', 'NOTE'], rows)
}

/** The human `inspect` output: the summary, then the spec as YAML. */
export function formatInspect(s: ServiceDetailView): string {
  const head = formatKeyValues([
    ['name', s.name],
    ['stack', s.stack],
    ['image', s.image],
    ['replicas', s.replicas === null ? 'global' : String(s.replicas)],
    ['revision', String(s.revision)],
    ['updated', `${s.updatedAt} by ${s.writer}`],
  ])
  return `${head}spec:\n${stringify(s.spec, { indent: 2 }).replace(/^/gm, '  ').trimEnd()}\n`
}

/** The `history` table, oldest first; `*` marks the revision in force. */
export function formatHistory(list: readonly HistoryEntryView[]): string {
  const rows = list.map((h) => [
    h.current ? '*' : '',
    String(h.revision),
    h.time,
    h.writer,
    h.action,
    h.image ?? '-',
    h.action === 'remove' ? '-' : h.replicas === null ? 'global' : String(h.replicas),
    h.action === 'change' ? h.changes.map((c) => formatChange(c)).join('; ') : '',
  ])
  return formatTable(['', 'REV', 'TIME', 'BY', 'ACTION', 'IMAGE', 'REPLICAS', 'CHANGES'], rows)
}

/** `SERVICE=N` arguments of `scale`; a malformed one is a usage error (exit 2). */
export function parseScaleArgs(args: readonly string[]): { name: string; replicas: number }[] {
  return args.map((a) => {
    const m = /^([^=\s]+)=(\d{1,7})$/.exec(a)
    if (m === null) throw new SkeinError('usage', `'${a}' is not SERVICE=N (for example web=3)`)
    return { name: m[1] as string, replicas: Number(m[2]) }
  })
}

/** `apply`, `services`, `ps`, `inspect`, `rm`, `scale`, `history`: the desired state and its replicas (docs/cli.md). */
export function registerServiceCommands(program: Command, deps: CliDeps): void {
  withConnectFlags(program.command('apply').description('apply a stack file (native or Compose): print the plan, then store it cluster-wide'))
    .requiredOption('-f, --file <file>', 'the stack file (YAML or JSON)')
    .option('--dry-run', 'print the plan only')
    .option('--prune', 'remove the stack’s services that are not in the file')
    .option('--stack <name>', 'stack name (overrides the file’s)')
    .addOption(new Option('--format <format>', 'file format').choices(['auto', 'native', 'compose']).default('auto'))
    .option('--json', 'print a JSON object: { plan, applied, dryRun }')
    .action(async (flags: ApplyFlags) => {
      const stack = await loadSpecFileForCli(flags.file, { format: flags.format ?? 'auto', stack: flags.stack, env: deps.env, stderr: deps.stderr })
      const client = connect(flags, deps.env)
      const prune = flags.prune === true
      const plan = await client.plan(stack, { prune })
      if (!flags.json) deps.stdout(`${renderPlan(plan)}\n`)
      if (plan.conflicts.length > 0) {
        throw new SkeinError('conflict', `nothing applied: ${plan.conflicts.map((c) => `${c.name} belongs to stack ${c.stack}`).join(', ')}`, { hint: 'rename the services, or remove the others first' })
      }
      if (flags.dryRun === true || planIsEmpty(plan)) {
        if (flags.json) deps.stdout(json({ plan, applied: [], dryRun: flags.dryRun === true }))
        else deps.stdout(flags.dryRun === true ? 'dry run: nothing applied\n' : 'nothing to apply\n')
        return
      }
      const res = await client.apply(stack, { prune })
      if (flags.json) deps.stdout(json({ ...res, dryRun: false }))
      else deps.stdout(`applied: ${res.applied.map((a) => `${a.action} ${a.name} (revision ${a.revision})`).join(', ')}\n`)
    })

  withConnectFlags(program.command('services').description('list the services of the desired state'))
    .option('--json', 'print a JSON array')
    .action(async (flags: OutputFlags) => {
      const list = await connect(flags, deps.env).services()
      deps.stdout(flags.json ? json(list) : formatServices(list, deps.now()))
    })

  withConnectFlags(program.command('ps').argument('[service]', 'only this service').description('list the replicas: host, state, health, container, age, restarts'))
    .option('--json', 'print a JSON array')
    .action(async (name: string | undefined, flags: OutputFlags) => {
      const list = await connect(flags, deps.env).replicas(name)
      deps.stdout(flags.json ? json(list) : formatReplicas(list, deps.now()))
    })

  withConnectFlags(program.command('inspect').argument('<service>', 'service name').description('show a service’s spec and current revision'))
    .option('--json', 'print a JSON object')
    .action(async (name: string, flags: OutputFlags) => {
      const s = await connect(flags, deps.env).service(name)
      deps.stdout(flags.json ? json(s) : formatInspect(s))
    })

  withConnectFlags(program.command('rm').argument('<service...>', 'service names').description('remove services (all or none)'))
    .option('--json', 'print a JSON object')
    .action(async (names: string[], flags: OutputFlags) => {
      const res = await connect(flags, deps.env).removeServices(names)
      deps.stdout(flags.json ? json(res) : res.removed.map((r) => `removed ${r.name} (revision ${r.revision})\n`).join(''))
    })

  withConnectFlags(program.command('scale').argument('<service=n...>', 'services and replica counts, e.g. web=3').description('set replica counts (all or none)'))
    .option('--json', 'print a JSON object')
    .action(async (args: string[], flags: OutputFlags) => {
      const changes = parseScaleArgs(args)
      const res = await connect(flags, deps.env).scale(changes)
      if (flags.json) deps.stdout(json(res))
      else deps.stdout(res.scaled.map((s) => (s.written ? `scaled ${s.name}: ${s.from} → ${s.to} (revision ${s.revision})\n` : `${s.name} already has ${s.to} replicas\n`)).join(''))
    })

  withConnectFlags(program.command('history').argument('<service>', 'service name').description('the revisions kept for a service (oldest first), with who wrote them and what changed'))
    .option('--json', 'print a JSON array')
    .action(async (name: string, flags: OutputFlags) => {
      const list = await connect(flags, deps.env).history(name)
      deps.stdout(flags.json ? json(list) : formatHistory(list))
    })
}
