/**
 * `skein logs` across hosts (docs/cli.md): the gathering of every host's lines of a service (the
 * asking side of the peer-query `logs` question; query-logs.ts answers it). Every wait is bounded.
 */
import type { LogItemView, LogsOptions } from '../api/running.ts'
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { MemberState } from '../membership/types.ts'
import type { Assignment } from '../scheduler/types.ts'
import { ItemQueue, sleep } from './query-logs.ts'
import { logNote, mergeLogItems } from './query.ts'
import type { QueryShell } from './query-shell.ts'

/** What gathering a service's logs from every host needs. */
export interface ClusterLogContext {
  selfId: string
  nameOf(id: string): string
  /** The committed assignments. */
  assignments(): readonly Assignment[]
  /** A host's membership state, undefined when unknown. */
  hostState(id: string): MemberState | undefined
  /** This host's logs of the service (hostLogs). */
  local(service: string, opts: LogsOptions): AsyncIterable<LogItemView>
  ask: QueryShell['ask']
  /** A new follow-session number (unique for this peer). */
  newSession(): number
  /** How long a host may take to answer (default 10 s; a follow poll gets its 1 s wait on top). */
  timeoutMs?: number
  /** Pause after a host did not answer, before asking again (default 2 s). */
  retryMs?: number
  /** How often a follow looks for hosts that got a replica of the service (default 1 s). */
  rescanMs?: number
}

const hostsOf = (rows: readonly Assignment[]): string[] => [...new Set([...rows].sort((a, b) => a.slot - b.slot).map((a) => a.host))]

/** The replicas of `service` on `host`, as `web.1, web.3`. */
const replicasOn = (rows: readonly Assignment[], service: string, host: string): string =>
  rows.filter((a) => a.host === host).sort((a, b) => a.slot - b.slot).map((a) => `${service}.${a.slot}`).join(', ')

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

/**
 * The logs of a service's replicas on every host that runs one (from the committed assignments).
 * Once: every host's last `tail` lines per replica, merged by time. With `follow`: new lines from
 * every host until `signal` aborts, also from hosts that get a replica later. A host that does not
 * answer is one note line, never a failure of the whole.
 */
export async function* clusterLogs(ctx: ClusterLogContext, service: string, opts: LogsOptions): AsyncGenerator<LogItemView> {
  const rows = ctx.assignments().filter((a) => a.service === service)
  if (rows.length === 0) throw new SkeinError('unknown-service', `no replica of ${service} is assigned`, { hint: '`skein ps` lists the replicas' })
  const tail = Math.min(opts.tail ?? 100, 100_000)
  const timeoutMs = ctx.timeoutMs ?? 10_000
  const signal = opts.signal
  const noteFor = (host: string, err: unknown, what: string): LogItemView => logNote(service, ctx.nameOf(host), `${what} from ${ctx.nameOf(host)}: ${errorMessage(err)}`)
  const away = (host: string): MemberState | undefined => {
    const st = ctx.hostState(host)
    return st === 'dead' || st === 'left' ? st : undefined
  }

  if (opts.follow !== true) {
    const groups = await Promise.all(hostsOf(rows).map(async (host): Promise<LogItemView[]> => {
      if (host === ctx.selfId) return await collect(ctx.local(service, { tail, follow: false, ...(signal === undefined ? {} : { signal }) }))
      const what = `no logs of ${replicasOn(rows, service, host)}`
      const st = away(host)
      if (st !== undefined) return [logNote(service, ctx.nameOf(host), `${what}: ${ctx.nameOf(host)} is ${st}`)]
      try {
        const a = await ctx.ask(host, { k: 'logs', service, tail, follow: false, session: 0, since: 0 }, timeoutMs)
        return a.items
      } catch (err) {
        return [noteFor(host, err, what)]
      }
    }))
    yield* mergeLogItems(groups)
    return
  }

  const queue = new ItemQueue<LogItemView>(10_000)
  const stop = new AbortController()
  const inner = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal])
  const started = new Set<string>()
  const sessions: { host: string; session: number }[] = []

  const pollHost = async (host: string): Promise<void> => {
    const session = ctx.newSession()
    sessions.push({ host, session })
    let since = 0
    let failing = false
    while (!inner.aborted) {
      try {
        const a = await ctx.ask(host, { k: 'logs', service, tail, follow: true, session, since }, timeoutMs + 1_000)
        since = a.next
        if (failing) queue.push(logNote(service, ctx.nameOf(host), `${ctx.nameOf(host)} answers again`))
        failing = false
        queue.push(...a.items)
        if (a.items.length === 0) await sleep(100, inner)
      } catch (err) {
        if (inner.aborted) break
        if (!failing) queue.push(noteFor(host, err, 'no logs'))
        failing = true
        await sleep(ctx.retryMs ?? 2_000, inner)
      }
    }
  }

  const startHost = (host: string): void => {
    if (started.has(host)) return
    started.add(host)
    if (host !== ctx.selfId) {
      void pollHost(host)
      return
    }
    void (async () => {
      try {
        for await (const i of ctx.local(service, { tail, follow: true, signal: inner })) queue.push(i)
      } catch (err) {
        if (!inner.aborted) queue.push(noteFor(host, err, 'no logs'))
      }
    })()
  }
  const scan = (): void => {
    for (const host of hostsOf(ctx.assignments().filter((a) => a.service === service))) startHost(host)
  }

  scan()
  const timer = setInterval(scan, ctx.rescanMs ?? 1_000)
  let reported = 0
  try {
    while (!inner.aborted) {
      if (queue.dropped > reported) {
        yield logNote(service, ctx.nameOf(ctx.selfId), `${queue.dropped - reported} lines dropped: they came faster than they were read`)
        reported = queue.dropped
      }
      const item = queue.shift()
      if (item !== undefined) yield item
      else await queue.wait(inner)
    }
  } finally {
    clearInterval(timer)
    stop.abort()
    for (const s of sessions) ctx.ask(s.host, { k: 'cancel', session: s.session }, 2_000).catch(() => undefined)
  }
}
