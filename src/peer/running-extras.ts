/**
 * `skein events` and `skein drain` for one peer (docs/cli.md): the events of this peer's agent, of
 * the committed log (assignments, drains, announced restarts) and of its membership view in one
 * ring buffer; drain/undrain and the restart announcement of a graceful stop through the leader's
 * log. Gathering from other peers is in query-*.ts.
 */
import type { DrainView, EventView } from '../api/running.ts'
import type { AgentEvent } from '../agent/service.ts'
import type { CommittedEntry } from '../consensus/commands.ts'
import type { ConsensusService } from '../consensus/service-types.ts'
import { SkeinError } from '../core/errors.ts'
import type { Member } from '../membership/types.ts'
import { SeqRing } from './query.ts'
import type { QueryShell } from './query-shell.ts'

/** The default of `--restart-grace`: how long the replicas of a gracefully stopped host wait for it. */
export const DEFAULT_RESTART_GRACE_MS = 30_000
/** The largest `--restart-grace`. */
export const MAX_RESTART_GRACE_MS = 3_600_000
/** How far ahead of the leader's clock an announced restart may end: the largest grace plus clock skew. */
export const MAX_RESTARTING_AHEAD_MS = MAX_RESTART_GRACE_MS + 5 * 60_000
/** How long a stopping peer waits for its announcement to be committed. */
export const RESTART_ANNOUNCE_TIMEOUT_MS = 1_500

const nul = { host: null, hostId: null, service: null, slot: null, generation: null, containerId: null, reason: null }

/** The ring buffer of events a peer shows. */
export interface ClusterEvents {
  events(): EventView[]
  onEvent(fn: (e: EventView) => void): () => void
  /** Feed: an agent event of this host; returns its view. */
  agent(e: AgentEvent): EventView
  /** Feed: a committed log entry. */
  committed(c: CommittedEntry): void
  /** Feed: the membership changed (state transitions are diffed here). */
  members(ms: readonly Member[]): void
}

/** Create the buffer (`capacity` events kept). */
export function createClusterEvents(selfId: string, nameOf: (id: string) => string, now: () => number, capacity = 1000): ClusterEvents {
  const buf = new SeqRing<EventView>(capacity)
  const listeners = new Set<(e: EventView) => void>()
  const states = new Map<string, Member['state']>()
  const push = (e: EventView): void => {
    buf.push(e)
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
    events: () => buf.since(0).items,
    onEvent(fn) {
      listeners.add(fn)
      return () => listeners.delete(fn)
    },
    agent(e) {
      const view: EventView = {
        ...nul, time: iso(e.time), kind: e.kind, host: nameOf(selfId), hostId: selfId, service: e.service ?? null, slot: e.slot ?? null,
        generation: e.generation ?? null, containerId: e.containerId ?? null, reason: e.reason ?? null,
        ...(e.image !== undefined && { image: e.image }), ...(e.durationMs !== undefined && { durationMs: e.durationMs }), ...(e.bytes !== undefined && { bytes: e.bytes }),
      }
      push(view)
      return view
    },
    committed(c) {
      if (c.kind !== 'command') return
      const cmd = c.command
      const at = `log entry ${c.term}.${c.index}`
      if (cmd.kind === 'restarting') {
        const what = cmd.untilMs > 0 ? `stopping gracefully, back before ${iso(cmd.untilMs)}` : 'restart announcement cleared'
        push({ ...nul, time: iso(now()), kind: 'restarting', host: nameOf(cmd.host), hostId: cmd.host, reason: `${what}, ${at}` })
      }
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

/**
 * Drain or undrain `host` through the log. Only the leader proposes: another peer hands it to
 * `forward` (the leader, through the peer-query protocol), or without one fails naming the leader.
 */
export async function proposeDrain(
  consensus: Pick<ConsensusService, 'status' | 'proposeAndWait'>,
  members: readonly HostRef[],
  host: string,
  drained: boolean,
  forward?: (leaderId: string, host: HostRef) => Promise<DrainView>,
): Promise<DrainView> {
  const m = resolveHost(members, host)
  const st = consensus.status()
  if (st.role !== 'leader') {
    const verb = drained ? 'drain' : 'undrain'
    if (st.leaderId === null) throw new SkeinError('no-leader', `cannot ${verb} ${m.name}: the cluster has no leader right now`, { hint: 'wait for one (`skein status` names it) and retry' })
    if (forward !== undefined) return await forward(st.leaderId, m)
    throw new SkeinError('not-leader', `this peer is not the leader; ${verb} through the leader, ${st.leader ?? st.leaderId}`, {
      hint: `run \`skein ${verb} ${host}\` on ${st.leader ?? st.leaderId} (or pass --api with its API address)`,
    })
  }
  await consensus.proposeAndWait({ kind: 'drain', host: m.id, drained }, { timeoutMs: 10_000 })
  return { id: m.id, name: m.name, drained }
}

/**
 * On the leader: commit that `host` (the peer that asked, or this one) stops gracefully and will be
 * back before `untilMs` (0 clears). An end further than MAX_RESTARTING_AHEAD_MS from this peer's
 * clock `now` is refused, so that no peer can hold its replicas for long.
 */
export async function commitRestarting(
  consensus: Pick<ConsensusService, 'status' | 'proposeAndWait'>,
  host: string,
  untilMs: number,
  now: number,
  timeoutMs = RESTART_ANNOUNCE_TIMEOUT_MS,
): Promise<void> {
  if (untilMs > now + MAX_RESTARTING_AHEAD_MS) {
    throw new SkeinError('bad-request', `a restart announced until ${new Date(untilMs).toISOString()} ends too far ahead (the longest grace is ${MAX_RESTART_GRACE_MS / 60_000} min)`, {
      hint: 'check the clocks of the hosts (NTP)',
    })
  }
  const st = consensus.status()
  if (st.role !== 'leader') throw new SkeinError('not-leader', 'this peer is not the leader', { hint: 'ask the leader (`skein status` names it)' })
  await consensus.proposeAndWait({ kind: 'restarting', host, untilMs }, { timeoutMs })
}

/**
 * A graceful stop (SIGTERM/SIGINT, not a leave): have the leader commit that this peer will be back
 * before `untilMs`. The leader proposes and waits for the commit itself (before it stops leading);
 * a follower asks the leader over the peer-query protocol. Bounded by `timeoutMs`; rejects (a
 * SkeinError) when there is no leader or no answer in time: the caller logs it and stops anyway.
 */
export async function announceRestart(
  consensus: Pick<ConsensusService, 'status' | 'proposeAndWait'>,
  ask: QueryShell['ask'],
  selfId: string,
  untilMs: number,
  now: number,
  timeoutMs = RESTART_ANNOUNCE_TIMEOUT_MS,
): Promise<{ via: 'self' | 'leader'; leaderId: string }> {
  const st = consensus.status()
  if (st.role === 'leader') {
    await commitRestarting(consensus, selfId, untilMs, now, timeoutMs)
    return { via: 'self', leaderId: selfId }
  }
  if (st.leaderId === null) throw new SkeinError('no-leader', 'the cluster has no leader right now')
  await ask(st.leaderId, { k: 'restarting', untilMs }, timeoutMs)
  return { via: 'leader', leaderId: st.leaderId }
}
