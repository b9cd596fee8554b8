import type { Command } from 'commander'
import type { EventView, LogItemView } from '../api/running.ts'
import type { ServiceView } from '../api/types.ts'
import { SkeinError } from '../core/errors.ts'
import { connect, type ConnectFlags, withConnectFlags, json } from './connect.ts'
import type { CliDeps } from './program.ts'

interface Flags extends ConnectFlags {
  json?: boolean
  wait?: boolean
  timeout?: string
  follow?: boolean
  tail?: string
}


/** One `events` line: time, kind, host, replica, container, reason. */
export function formatEvent(e: EventView): string {
  const parts = [e.time, e.kind.padEnd(11), e.host ?? '-']
  if (e.service !== null) parts.push(e.slot === null ? e.service : `${e.service}.${e.slot}`)
  if (e.containerId !== null) parts.push(e.containerId.slice(0, 12))
  if (e.reason !== null) parts.push(`(${e.reason})`)
  return `${parts.join(' ')}\n`
}

/** One `logs` line, prefixed `service.slot |`; a note of skein is `service | (note)`. */
export function formatLogItem(i: LogItemView): string {
  if (i.kind === 'note') return `${i.service} | (${i.text ?? ''})\n`
  if (i.kind === 'elsewhere') return `${i.service}.${i.slot} | (on ${i.host}: run \`skein logs ${i.service}\` there)\n`
  return `${i.service}.${i.slot} | ${i.text ?? ''}\n`
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Why the replicas left on a drained host stay there, when the leader says every one of their
 * services cannot move them off it ("N of M replicas cannot move off HOST: …"); null while any may
 * still move.
 */
export function drainStuck(host: string, left: readonly { service: string }[], services: readonly ServiceView[]): string | null {
  if (left.length === 0) return null
  const names = [...new Set(left.map((r) => r.service))].sort()
  const notes: string[] = []
  for (const n of names) {
    const explain = services.find((s) => s.name === n)?.explain ?? null
    const off = explain === null ? null : /cannot move off ([^:]+):/.exec(explain)
    if (explain === null || off === null || !(off[1] ?? '').split(', ').includes(host)) return null
    notes.push(`${n}: ${explain}`)
  }
  return notes.join('; ')
}

/** `drain`, `undrain`, `events`, `logs` (docs/cli.md). */
export function registerRunningCommands(program: Command, deps: CliDeps): void {
  withConnectFlags(program.command('drain').argument('<host>', 'node name or peer id').description('move every replica off a host (before maintenance); any peer forwards it to the leader'))
    .option('--no-wait', 'do not wait for the replicas to leave the host')
    .option('--timeout <seconds>', 'longest wait for the replicas to leave', '120')
    .option('--json', 'print a JSON object: { id, name, drained, remaining }')
    .action(async (host: string, flags: Flags) => {
      const client = connect(flags, deps.env)
      const res = await client.drain(host, true)
      if (!flags.json) deps.stdout(`${res.name} is drained: its replicas move to other hosts\n`)
      let remaining: number | null = null
      if (flags.wait !== false) {
        const limit = Number(flags.timeout ?? '120')
        if (!Number.isFinite(limit) || limit < 0) throw new SkeinError('usage', `--timeout must be a number of seconds, not ${flags.timeout}`)
        const deadline = Date.now() + limit * 1000
        let last = -1
        let since = Date.now()
        for (;;) {
          const left = (await client.replicas()).filter((r) => r.hostId === res.id)
          remaining = left.length
          if (remaining !== last && !flags.json) deps.stdout(remaining === 0 ? `no replica runs on ${res.name} any more\n` : `${remaining} replica${remaining === 1 ? '' : 's'} left on ${res.name}\n`)
          if (remaining !== last) since = Date.now()
          last = remaining
          if (remaining === 0) break
          // No progress for a few seconds and the leader says none of them can move: say why now.
          const stuck = Date.now() - since >= 3000 ? drainStuck(res.name, left, await client.services()) : null
          if (stuck !== null) {
            throw new SkeinError('drain-stuck', `${remaining} replica${remaining === 1 ? '' : 's'} cannot leave ${res.name}, and keep running there: ${stuck}`, {
              hint: `add a host that can take them or relax their constraints (they move as soon as one can), or \`skein undrain ${res.name}\``,
            })
          }
          if (Date.now() >= deadline) {
            throw new SkeinError('drain-timeout', `${remaining} replica${remaining === 1 ? '' : 's'} still on ${res.name} after ${limit}s`, { hint: '`skein ps` and `skein events` tell why (constraints may pin them there)' })
          }
          await sleep(500)
        }
      }
      if (flags.json) deps.stdout(json({ ...res, remaining }))
    })

  withConnectFlags(program.command('undrain').argument('<host>', 'node name or peer id').description('let the scheduler place replicas on a host again'))
    .option('--json', 'print a JSON object: { id, name, drained }')
    .action(async (host: string, flags: Flags) => {
      const res = await connect(flags, deps.env).drain(host, false)
      deps.stdout(flags.json ? json(res) : `${res.name} is no longer drained\n`)
    })

  withConnectFlags(program.command('events').description('what the cluster did: placements, starts, exits, restarts, moves, drains, host deaths, with reasons (from every live host)'))
    .option('-f, --follow', 'keep printing new events (Ctrl-C stops)')
    .option('--json', 'one JSON object per line (a JSON array without -f)')
    .action(async (flags: Flags) => {
      const client = connect(flags, deps.env)
      if (flags.follow !== true) {
        const list = await client.events()
        deps.stdout(flags.json ? json(list) : list.map(formatEvent).join(''))
        return
      }
      const abort = new AbortController()
      const stop = (): void => abort.abort()
      process.once('SIGINT', stop)
      try {
        for await (const e of client.followEvents(abort.signal)) deps.stdout(flags.json ? `${JSON.stringify(e)}\n` : formatEvent(e))
      } finally {
        process.off('SIGINT', stop)
      }
    })

  withConnectFlags(program.command('logs').argument('<service>', 'service name').description('the output of a service’s replicas on every host, prefixed service.slot'))
    .option('-f, --follow', 'keep printing new lines (Ctrl-C stops)')
    .option('--tail <n>', 'the last N lines of each replica', '100')
    .option('--json', 'one JSON object per line')
    .action(async (service: string, flags: Flags) => {
      const tail = Number(flags.tail ?? '100')
      if (!Number.isInteger(tail) || tail < 0) throw new SkeinError('usage', `--tail must be a whole number, not ${flags.tail}`)
      const abort = new AbortController()
      const stop = (): void => abort.abort()
      process.once('SIGINT', stop)
      try {
        for await (const i of connect(flags, deps.env).logs(service, { tail, follow: flags.follow === true, signal: abort.signal })) deps.stdout(flags.json ? `${JSON.stringify(i)}\n` : formatLogItem(i))
      } finally {
        process.off('SIGINT', stop)
      }
    })
}
