/**
 * `skein events`, `skein logs` and `skein drain` for one peer (docs/cli.md): the events of this
 * peer's agent, of the committed log (assignments, drains) and of its membership view in one ring
 * buffer; the logs of a service's replicas on this host; drain/undrain through the leader's log.
 */
import type { DrainView, EventView, LogItemView, LogsOptions } from '../api/running.ts'
import type { AgentEvent } from '../agent/service.ts'
import type { CommittedEntry } from '../consensus/commands.ts'
import type { ConsensusService } from '../consensus/service-types.ts'
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { Member } from '../membership/types.ts'
import type { ContainerRuntime } from '../runtime/types.ts'
import type { Assignment, ObservedReplica } from '../scheduler/types.ts'

const nul = { host: null, hostId: null, service: null, slot: null, generation: null, containerId: null, reason: null }

/** The ring buffer of events a peer shows. */
export interface ClusterEvents {
  events(): EventView[]
  onEvent(fn: (e: EventView) => void): () => void
  /** Feed: an agent event of this host. */
  agent(e: AgentEvent): void
  /** Feed: a committed log entry. */
  committed(c: CommittedEntry): void
  /** Feed: the membership changed (state transitions are diffed here). */
  members(ms: readonly Member[]): void
}

/** Create the buffer (`capacity` events kept). */
export function createClusterEvents(selfId: string, nameOf: (id: string) => string, now: () => number, capacity = 1000): ClusterEvents {
  const buf: EventView[] = []
  const listeners = new Set<(e: EventView) => void>()
  const states = new Map<string, Member['state']>()
  const push = (e: EventView): void => {
    buf.push(e)
    if (buf.length > capacity) buf.splice(0, buf.length - capacity)
    for (const l of listeners) {
      try {
        l(e)
      } catch {
        // a listener's failure is its own
      }
    }
  }
  const iso = (t: number): string => new Date(t).toISOString()
  return {
    events: () => [...buf],
    onEvent(fn) {
      listeners.add(fn)
      return () => listeners.delete(fn)
    },
    agent(e) {
      push({
        ...nul, time: iso(e.time), kind: e.kind, host: nameOf(selfId), hostId: selfId, service: e.service ?? null, slot: e.slot ?? null,
        generation: e.generation ?? null, containerId: e.containerId ?? null, reason: e.reason ?? null,
      })
    },
    committed(c) {
      if (c.kind !== 'command') return
      const cmd = c.command
      const at = `log entry ${c.term}.${c.index}`
      if (cmd.kind === 'drain') push({ ...nul, time: iso(now()), kind: cmd.drained ? 'drained' : 'undrained', host: nameOf(cmd.host), hostId: cmd.host, reason: at })
      if (cmd.kind !== 'placements') return
      for (const ch of cmd.changes) {
        push({
          ...nul, time: iso(now()), kind: ch.host === null ? 'unassigned' : 'assigned', host: ch.host === null ? null : nameOf(ch.host), hostId: ch.host,
          service: ch.service, slot: ch.slot, generation: ch.generation, reason: `revision ${ch.revision}, ${at}`,
        })
      }
    },
    members(ms) {
      for (const m of ms) {
        const before = states.get(m.id)
        states.set(m.id, m.state)
        if (before === undefined || before === m.state) continue
        push({ ...nul, time: iso(now()), kind: `host-${m.state}`, host: m.name, hostId: m.id, reason: `was ${before}` })
      }
    },
  }
}

type HostRef = Pick<Member, 'id' | 'name' | 'state'>

/** Resolve a host by node name or peer id among the members; SkeinError when unknown or ambiguous. */
export function resolveHost(members: readonly HostRef[], host: string): HostRef {
  const byId = members.find((m) => m.id === host)
  if (byId !== undefined) return byId
  const named = members.filter((m) => m.name === host && m.state !== 'left')
  if (named.length > 1) throw new SkeinError('ambiguous', `several hosts are named ${host}`, { hint: 'pass the peer id instead (`skein nodes --wide`)' })
  const m = named[0]
  if (m === undefined) throw new SkeinError('unknown-host', `no host is named ${host}`, { hint: '`skein nodes` lists them' })
  return m
}

/** Drain or undrain `host` through the log. Only the leader proposes: elsewhere, a clear error naming it. */
export async function proposeDrain(consensus: Pick<ConsensusService, 'status' | 'proposeAndWait'>, members: readonly HostRef[], host: string, drained: boolean): Promise<DrainView> {
  const m = resolveHost(members, host)
  const st = consensus.status()
  if (st.role !== 'leader') {
    const verb = drained ? 'drain' : 'undrain'
    if (st.leaderId === null) throw new SkeinError('no-leader', `cannot ${verb} ${m.name}: the cluster has no leader right now`, { hint: 'retry in a few seconds' })
    throw new SkeinError('not-leader', `this peer is not the leader; ${verb} through the leader, ${st.leader ?? st.leaderId}`, {
      hint: `run \`skein ${verb} ${host}\` on ${st.leader ?? st.leaderId} (or pass --api with its API address)`,
    })
  }
  await consensus.proposeAndWait({ kind: 'drain', host: m.id, drained }, { timeoutMs: 10_000 })
  return { id: m.id, name: m.name, drained }
}

/** What the logs of a service need. */
export interface LogSources {
  selfId: string
  runtime: ContainerRuntime
  assignments(): readonly Assignment[]
  observed(): readonly ObservedReplica[]
  nameOf(id: string): string
}

/**
 * The logs of a service's replicas on this host, interleaved as they come, each line with its
 * replica; replicas elsewhere are one `elsewhere` item each (the peers share no log transport yet).
 */
export async function* serviceLogs(src: LogSources, service: string, opts: LogsOptions): AsyncGenerator<LogItemView> {
  const rows = src.assignments().filter((a) => a.service === service).sort((a, b) => a.slot - b.slot)
  if (rows.length === 0) throw new SkeinError('unknown-service', `no replica of ${service} is assigned`, { hint: '`skein ps` lists the replicas' })
  const mine: { a: Assignment; id: string }[] = []
  for (const a of rows) {
    if (a.host !== src.selfId) {
      yield { service, slot: a.slot, host: src.nameOf(a.host), kind: 'elsewhere', stream: null, time: null, text: null }
      continue
    }
    const o = src.observed().find((r) => r.service === service && r.slot === a.slot && r.host === a.host && r.generation === a.generation)
    if (o?.containerId != null) mine.push({ a, id: o.containerId })
  }
  const queue: LogItemView[] = []
  let wake: (() => void) | undefined
  let open = mine.length
  const host = src.nameOf(src.selfId)
  for (const { a, id } of mine) {
    void (async () => {
      try {
        for await (const l of src.runtime.logs(id, { tail: opts.tail ?? 100, follow: opts.follow === true, ...(opts.signal === undefined ? {} : { signal: opts.signal }) })) {
          queue.push({ service, slot: a.slot, host, kind: 'line', stream: l.stream, time: new Date(l.time).toISOString(), text: l.text })
          wake?.()
        }
      } catch (err) {
        if (opts.signal?.aborted !== true) queue.push({ service, slot: a.slot, host, kind: 'line', stream: 'stderr', time: null, text: `(skein: cannot read the logs: ${errorMessage(err)})` })
      } finally {
        open--
        wake?.()
      }
    })()
  }
  while (open > 0 || queue.length > 0) {
    const item = queue.shift()
    if (item !== undefined) {
      yield item
      continue
    }
    await new Promise<void>((resolve) => (wake = resolve))
    wake = undefined
  }
}
