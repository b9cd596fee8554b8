/**
 * The end-of-run checks of the running-flow simulation (docs/simulation.md), against the final
 * leader's committed log:
 * - every agent action was decided from a committed prefix of that log, and is justified by the
 *   slot's assignment in it (a create/start runs the assigned copy; a stop/remove never hits the
 *   assigned copy, except a duplicate of it);
 * - an action without applied log state is only a start of the host's own copy of an assignment in
 *   the table it had applied (its last known one), after 10 s in which the host knew no leader;
 * - fencing: a host's applied position never goes back, nor does any slot's assignment it acts on;
 * - convergence: each desired service runs exactly what the hosts allow, one copy per slot, on
 *   live, undrained hosts that meet its constraints; nothing else runs;
 * - every acknowledged desired-state write survives: it, or a later write of its key, is held by
 *   every running host (a write acknowledged by a host that stays down must be on its disk).
 */
import { applyEntry, emptyAppState } from '../consensus/commands.ts'
import { GENERATION_LABEL } from '../agent/step.ts'
import { LABELS } from '../runtime/labels.ts'
import type { Constraint, ServiceSpec } from '../model/spec.ts'
import { compareHlc } from '../state/hlc.ts'
import type { Assignment } from '../scheduler/types.ts'
import type { Entry as StateEntry } from '../state/types.ts'
import { sameCopy } from '../agent/step.ts'
import type { RunningCluster } from './running-cluster.ts'
import type { AckedWrite, SimHost } from './running-host.ts'

const pos = (a: { term: number; index: number }): string => `${a.index}@${a.term}`
const older = (a: { term: number; index: number }, b: { term: number; index: number }): boolean => a.term < b.term || (a.term === b.term && a.index < b.index)
/**
 * How long a host must have known no leader before it acts on its last known assignments
 * (docs/agent.md "Static stability"; deliberately not read from src/agent/last-known.ts).
 */
export const NO_LEADER_MS = 10_000

const sameAssignment = (a: Assignment | null, b: Assignment | null): boolean =>
  a === null || b === null ? a === b : a.host === b.host && a.generation === b.generation && a.revision === b.revision && a.term === b.term && a.index === b.index

/** Check 2 and the "stopped only by a committed decision" part of check 3. Returns the problems. */
export function checkDecisions(c: RunningCluster): string[] {
  const problems: string[] = []
  const l = c.leader()
  if (l === undefined) return ['no leader at the end: the committed log is unknown']
  const lh = c.host(l)
  const commit = lh.raft?.status().commit ?? 0
  const entries = lh.storage.entries(1, commit + 1)
  const records = [...c.actions].sort((a, b) => a.applied.index - b.applied.index || a.t - b.t)
  const app = emptyAppState()
  let next = 1
  for (const r of records) {
    const what = `${r.host} ${r.kind} ${r.service}.${r.slot} g${r.generation} r${r.revision} at t=${r.t}`
    if (r.applied.index > commit) {
      problems.push(`${what} read applied index ${r.applied.index}, beyond the final commit ${commit}`)
      continue
    }
    for (; next <= r.applied.index; next++) {
      const e = entries[next - 1]
      if (e !== undefined) applyEntry(app, e)
    }
    if (r.basis === 'none') problems.push(`${what}: acted without applied log state and without a last known assignment`)
    if (r.basis === 'last-known') {
      // Static stability: a start, only, and only after 10 s in which this host knew no leader. Its
      // table may be stale (that is the point); it must still be a committed prefix (below).
      if (r.kind !== 'start') problems.push(`${what}: made on a last known assignment, where only a start is allowed`)
      const quiet = r.noLeaderSince === null ? null : r.decidedAt - r.noLeaderSince
      if (quiet === null || quiet < NO_LEADER_MS) {
        problems.push(`${what}: made on a last known assignment ${quiet === null ? 'while the host knew a leader' : `after only ${quiet} ms without a leader`} (at least ${NO_LEADER_MS} ms)`)
      }
    } else if (r.applied.index < r.committedAtBoot) {
      problems.push(`${what} decided from applied index ${r.applied.index}, but ${r.committedAtBoot} entries were committed before its process started: a stale table`)
    }
    const termThere = r.applied.index === 0 ? 0 : entries[r.applied.index - 1]?.term
    if (termThere !== r.applied.term) {
      problems.push(`${what} decided from entry ${pos(r.applied)}, but the committed log has term ${termThere ?? 'none'} there`)
      continue
    }
    const a = app.table.get(r.service, r.slot) ?? null
    if (!sameAssignment(a, r.assignment)) {
      problems.push(`${what} read assignment ${JSON.stringify(r.assignment)}, but the committed log says ${JSON.stringify(a)} at ${r.applied.index}`)
      continue
    }
    const claimed = a !== null && a.host === r.host && a.generation === r.generation && a.revision === r.revision
    if ((r.kind === 'create' || r.kind === 'start') && !claimed) problems.push(`${what}: no committed assignment claims that copy (${JSON.stringify(a)})`)
    if ((r.kind === 'stop' || r.kind === 'remove') && claimed && !r.duplicate && !(r.kind === 'stop' && r.unhealthy)) {
      problems.push(`${what}${r.wasRunning ? ' (running)' : ''}: the committed assignment still claims that copy: a replica lost`)
    }
  }
  // Fencing: per host, the applied position and each slot's acted-on assignment only move forward.
  const lastApplied = new Map<string, { term: number; index: number }>()
  const lastSlot = new Map<string, Assignment>()
  for (const r of [...c.actions].sort((a, b) => a.t - b.t)) {
    const p = lastApplied.get(r.host)
    if (p !== undefined && r.applied.index < p.index) problems.push(`${r.host} acted at t=${r.t} from applied index ${r.applied.index} after acting from ${p.index}`)
    lastApplied.set(r.host, r.applied)
    if (r.assignment === null) continue
    const k = `${r.host}\u0000${r.service}\u0000${r.slot}`
    const prev = lastSlot.get(k)
    if (prev !== undefined && older(r.assignment, prev)) {
      problems.push(`${r.host} acted on ${r.service}.${r.slot} at t=${r.t} from assignment ${pos(r.assignment)}, older than ${pos(prev)} it acted on before`)
    }
    if (prev === undefined || older(prev, r.assignment)) lastSlot.set(k, r.assignment)
  }
  return problems
}

/** Every acknowledged write, or a later write of its key, is held by every running host. */
export function checkWrites(c: RunningCluster): string[] {
  const problems: string[] = []
  const up = c.ids.filter((id) => c.host(id).up)
  const stamps = new Set(c.acked.map((w) => `${w.entry.key}@${JSON.stringify(w.entry.hlc)}`))
  // A host that stays down still holds what it acknowledged, on its disk; it spreads it on return.
  for (const w of c.acked) {
    if (c.host(w.at).up) continue
    const e = c.state.peers.get(w.at)?.disk.entries.get(w.entry.key)
    if (e === undefined || compareHlc(e.hlc, w.entry.hlc) < 0) problems.push(`${w.at} (down) lost from its disk the write of ${w.entry.key} it acknowledged at t=${w.t}`)
  }
  const reached = (w: AckedWrite): boolean => c.host(w.at).up || up.some((id) => c.state.core(id)?.get(w.entry.key) !== undefined && compareHlc((c.state.core(id)?.get(w.entry.key) as StateEntry).hlc, w.entry.hlc) >= 0)
  for (const id of up) {
    const core = c.state.core(id)
    for (const w of c.acked) {
      if (!reached(w)) continue
      const e = core?.get(w.entry.key)
      if (e === undefined || compareHlc(e.hlc, w.entry.hlc) < 0) problems.push(`${id} lost the write of ${w.entry.key} acknowledged by ${w.at} at t=${w.t}`)
    }
    for (const e of core?.entries() ?? []) if (!stamps.has(`${e.key}@${JSON.stringify(e.hlc)}`)) problems.push(`${id} holds a write of ${e.key} nobody acknowledged`)
  }
  return problems
}

function matches(h: SimHost, c: Constraint): boolean {
  const v = c.attribute === 'node.labels' ? (c.label === null ? undefined : h.labels[c.label]) : c.attribute === 'node.id' ? h.id : c.attribute === 'node.hostname' ? h.name : undefined
  return c.op === 'in' ? v !== undefined && c.values.includes(v) : v === undefined || !c.values.includes(v)
}

/** The hosts a service may run on now: up, not drained (per the leader's log), meeting its constraints. */
export function eligibleHosts(c: RunningCluster, leader: SimHost, spec: ServiceSpec): SimHost[] {
  return c.ids.map((id) => c.host(id)).filter((h) => h.up && !leader.app.drained.has(h.id) && spec.placement.constraints.every((x) => matches(h, x)))
}

/** How many replicas a replicated service can run on `hosts` eligible hosts. */
export function capacityFor(spec: ServiceSpec, hosts: number): number {
  let cap = hosts === 0 ? 0 : Infinity
  if (spec.placement.maxPerNode !== null) cap = Math.min(cap, spec.placement.maxPerNode * hosts)
  if (spec.ports.some((p) => p.published !== null)) cap = Math.min(cap, hosts)
  return Math.min(cap, spec.replicas ?? 0)
}

/**
 * Check 1: undefined when the cluster has converged; otherwise the first reason it has not.
 * Only running hosts are looked at: a host that stays down keeps whatever its engine holds.
 */
export function convergence(c: RunningCluster): string | undefined {
  const l = c.leader()
  if (l === undefined) return 'no leader'
  const lh = c.host(l)
  const commit = lh.raft?.status().commit ?? 0
  const up = c.ids.map((id) => c.host(id)).filter((h) => h.up)
  for (const h of up) {
    if (!h.gateKnown) return `${h.id} has not applied the current log yet`
    if (h.app.applied < commit) return `${h.id} applied ${h.app.applied} of ${commit}`
  }
  const st = c.state.convergence()
  if (st !== undefined) return `desired state differs: ${st}`
  const { specs } = c.desired(lh)
  const byName = new Map(specs.map((s) => [s.name, s]))
  const running = new Map<string, { host: SimHost; slot: number }[]>()
  for (const h of up) {
    for (const x of h.containers.values()) {
      if (x.state !== 'running') continue
      const service = x.labels[LABELS.service] ?? ''
      const slot = Number(x.labels[LABELS.slot])
      const a = lh.app.table.get(service, slot)
      if (a === undefined || !sameCopy(x, a)) return `${h.id} still runs ${service}.${slot} g${x.labels[GENERATION_LABEL]}, which no committed assignment claims`
      running.set(service, [...(running.get(service) ?? []), { host: h, slot }])
    }
  }
  for (const [service, list] of running) if (!byName.has(service)) return `${service} is not desired but runs ${list.length} copies`
  for (const spec of specs) {
    const list = running.get(spec.name) ?? []
    const eligible = eligibleHosts(c, lh, spec)
    const ok = new Set(eligible.map((h) => h.id))
    const want = spec.mode === 'global' ? eligible.length : capacityFor(spec, eligible.length)
    const placed = list.filter((x) => ok.has(x.host.id))
    // A replica stays on a drained or no longer matching host only when it has nowhere to go.
    const stuck = (x: { host: SimHost; slot: number }): boolean =>
      spec.mode === 'replicated' && placed.length === want && want < (spec.replicas ?? 0) && lh.app.table.get(spec.name, x.slot)?.host === x.host.id
    const bad = list.find((x) => !ok.has(x.host.id) && !stuck(x))
    if (bad !== undefined) return `${spec.name}.${bad.slot} runs on ${bad.host.id}, which is drained or does not meet the constraints`
    const perHost = new Map<string, number>()
    for (const x of list) perHost.set(x.host.id, (perHost.get(x.host.id) ?? 0) + 1)
    if (spec.mode === 'global') {
      for (const h of eligible) if (perHost.get(h.id) !== 1) return `global ${spec.name} runs ${perHost.get(h.id) ?? 0} copies on ${h.id}`
      continue
    }
    const slots = list.map((x) => x.slot).sort((a, b) => a - b)
    if (placed.length !== want) return `${spec.name} runs ${placed.length} replicas on eligible hosts (slots ${slots.join(',')} in all), expected ${want} of ${spec.replicas ?? 0}`
    if (new Set(slots).size !== slots.length) return `${spec.name} runs a slot twice (slots ${slots.join(',')})`
    if (slots.some((s) => s >= (spec.replicas ?? 0))) return `${spec.name} runs slot ${slots[slots.length - 1]} of ${spec.replicas ?? 0} replicas`
    const m = spec.placement.maxPerNode
    for (const [h, n] of perHost) {
      if (m !== null && n > m) return `${spec.name} runs ${n} on ${h}, more than maxPerNode ${m}`
      if (n > 1 && spec.ports.some((p) => p.published !== null)) return `${spec.name} runs ${n} on ${h} with a published port`
    }
    for (const a of lh.app.table.all()) {
      if (a.service === spec.name && want === spec.replicas && !ok.has(a.host)) return `${spec.name}.${a.slot} is still assigned to ${a.host}, which is down, drained or not eligible`
    }
  }
  return undefined
}

/** A readable picture of the cluster, for failure messages: hosts, the leader's table and views. */
export function describeCluster(c: RunningCluster): string[] {
  const l = c.leader()
  const lh = l === undefined ? undefined : c.host(l)
  const lines = [`t=${c.now()} leader=${l ?? 'none'} drained=[${[...(lh?.app.drained ?? [])].join(',')}]`]
  for (const id of c.ids) {
    const h = c.host(id)
    const st = h.raft?.status()
    const view = lh?.view.get(id)
    const containers = [...h.containers.values()].map((x) => {
      const b = h.books.get(`${x.labels[LABELS.service]}\u0000${x.labels[LABELS.slot]}`)
      const book = x.state === 'running' || b === undefined ? '' : `(${b.state} restarts=${b.restarts} streak=${b.streak} backoffUntil=${b.backoffUntil} terminal=${b.terminal} exitKey=${b.exitKey})`
      return `${x.labels[LABELS.service]}.${x.labels[LABELS.slot]}g${x.labels[GENERATION_LABEL]}:${x.state}${book}`
    })
    lines.push(`${id} ${h.labels.zone} ${h.up ? `${st?.role} t${st?.term} applied=${h.app.applied} gate=${h.gateKnown} noLeaderSince=${h.noLeaderSince ?? '-'}` : 'DOWN'} seen-by-leader=${view?.state ?? '-'} [${containers.join(' ')}]`)
  }
  if (lh !== undefined) {
    lines.push(`table: ${lh.app.table.all().map((a) => `${a.service}.${a.slot}→${a.host}g${a.generation}@${a.index}`).join(' ')}`)
    lines.push(`desired: ${c.desired(lh).specs.map((s) => `${s.name}=${s.mode === 'global' ? 'global' : s.replicas}`).join(' ')}`)
  }
  return lines
}
