// The leader-only reconciler: desired × committed assignments × observed × membership × now →
// placements, moves and stops (docs/replicas.md, "What the scheduler decides"). Pure and
// deterministic: same input, same output.
import type { ServiceSpec } from '../model/spec.ts'
import { cmpStr, type Ask, type HostState } from './cluster.ts'
import { constraintMatches, type Rejections } from './filters.ts'
import { pickHost } from './rank.ts'
import { Round, copyKey, type Binding } from './round.ts'
import { slotKey } from './types.ts'
import { isActive } from './states.ts'
import type { MoveReason, SchedulerInput, SchedulerOutput, StopReason } from './types.ts'

/** One reconcile round. */
export function reconcile(input: SchedulerInput): SchedulerOutput {
  const r = new Round(input)
  removals(r)
  const staticRejections = new Map<string, Rejections>()
  for (const spec of r.specs) {
    const ask = r.asks.get(spec.name)
    if (ask === undefined) continue
    const cand = r.candidates(ask)
    staticRejections.set(spec.name, cand.rejections)
    if (spec.mode === 'global') reconcileGlobal(r, spec, ask, cand.hosts)
    else reconcileReplicated(r, spec, ask, cand.hosts)
  }
  staleCopies(r)
  r.finishExplain(staticRejections)
  return r.out
}

function stop(r: Round, service: string, slot: number, b: Binding, reason: StopReason): void {
  r.out.stop.push({ service, slot, host: b.host, generation: b.generation, containerId: r.containerOf(service, slot, b.host, b.generation), unassign: true, reason })
  const ask = r.asks.get(service)
  if (ask !== undefined) r.cluster.remove(ask, b.host)
  r.slotsOf(service).delete(slot)
}

const bySlot = (m: Map<number, Binding>): [number, Binding][] => [...m].sort(([a], [b]) => a - b)

/** Pass 1: free what goes away (removed services, scale-down, global hosts no longer eligible). */
function removals(r: Round): void {
  for (const service of [...r.slots.keys()].sort(cmpStr)) {
    if (!r.asks.has(service)) for (const [slot, b] of bySlot(r.slotsOf(service))) stop(r, service, slot, b, 'service-removed')
  }
  for (const spec of r.specs) {
    const slots = r.slotsOf(spec.name)
    for (const [slot, b] of bySlot(slots)) {
      if (spec.mode === 'replicated') {
        if (slot >= (spec.replicas ?? 0)) stop(r, spec.name, slot, b, 'scale-down')
      } else {
        const h = r.cluster.byId.get(b.host)
        if (h === undefined || h.node.state === 'left' || h.node.drained || !matches(h, spec)) stop(r, spec.name, slot, b, 'not-eligible')
      }
    }
  }
}

function matches(h: HostState, spec: ServiceSpec): boolean {
  return spec.placement.constraints.every((c) => constraintMatches(h.node, c))
}

/**
 * Why a committed slot must move now, or null; 'wait' while a lost host is given time
 * (`onHostLoss: wait`), 'restarting' while a dead host's announced restart has not run out.
 */
function moveReason(r: Round, spec: ServiceSpec, slot: number, b: Binding): MoveReason | 'wait' | 'restarting' | null {
  const h = r.cluster.byId.get(b.host)
  if (h === undefined) return 'host-unknown'
  const n = h.node
  if (n.state === 'left') return 'host-left'
  if (n.state === 'dead') {
    if (n.restartingUntil !== undefined && r.now < n.restartingUntil) return 'restarting'
    const loss = spec.onHostLoss
    return loss.action === 'wait' && r.now - n.since < loss.afterMs ? 'wait' : 'host-dead'
  }
  if (n.drained) return 'drained'
  if (!matches(h, spec)) return 'constraint'
  if (n.state !== 'alive') return null
  const o = r.copies.get(copyKey(spec.name, slot, b.host, b.generation))
  if (o === undefined) return null
  if (o.state === 'failed' && spec.restart.condition !== 'none') return 'failing'
  if (o.streak >= r.cfg.moveAfterRestarts && o.streakSince !== null && r.now - o.streakSince <= r.cfg.restartWindowMs) return 'failing'
  return null
}

function revisionOf(r: Round, service: string): number {
  return r.revisions[service] ?? 0
}

function nextGeneration(r: Round, service: string, slot: number): number {
  const k = slotKey(service, slot)
  const g = (r.maxGen.get(k) ?? 0) + 1
  r.maxGen.set(k, g)
  return g
}

/** Move a slot if a host takes it; returns whether it moved (else fills `rej` when asked). */
function tryMove(r: Round, ask: Ask, hosts: HostState[], slot: number, b: Binding, reason: MoveReason, rej?: Rejections): boolean {
  const to = pickHost(r.cluster, ask, hosts, { strategy: r.cfg.strategy, exclude: b.host, pin: null, ...(rej ? { rejections: rej } : {}) })
  if (to === undefined) return false
  const generation = nextGeneration(r, ask.service, slot)
  r.out.move.push({ service: ask.service, slot, from: b.host, to: to.node.id, revision: revisionOf(r, ask.service), generation, reason })
  r.cluster.remove(ask, b.host)
  r.cluster.add(ask, to.node.id)
  r.slotsOf(ask.service).set(slot, { host: to.node.id, generation })
  return true
}

/** Place an unassigned slot if a host takes it. */
function tryPlace(r: Round, ask: Ask, hosts: HostState[], slot: number, pin: { id: string; name: string } | null, rej?: Rejections): boolean {
  const to = pickHost(r.cluster, ask, hosts, { strategy: r.cfg.strategy, exclude: null, pin, ...(rej ? { rejections: rej } : {}) })
  if (to === undefined) return false
  const generation = nextGeneration(r, ask.service, slot)
  r.out.place.push({ service: ask.service, slot, host: to.node.id, revision: revisionOf(r, ask.service), generation })
  r.cluster.add(ask, to.node.id)
  r.slotsOf(ask.service).set(slot, { host: to.node.id, generation })
  return true
}

/** The data home of a volume service's slot, when it is a host that may take it. */
function pinOf(r: Round, ask: Ask, hosts: HostState[], slot: number): { id: string; name: string } | null {
  if (ask.volume === null) return null
  const home = r.home.get(slotKey(ask.service, slot))
  if (home === undefined) return null
  const h = hosts.find((x) => x.node.id === home)
  return h === undefined ? null : { id: h.node.id, name: h.node.name }
}

function reconcileReplicated(r: Round, spec: ServiceSpec, ask: Ask, hosts: HostState[]): void {
  const service = spec.name
  const desired = spec.replicas ?? 0
  const slots = r.slotsOf(service)
  const notes = r.notesOf(service)
  notes.desired = desired
  const before = r.out.move.length + r.out.place.length
  let pending = 0
  for (let slot = 0; slot < desired; slot++) {
    const b = slots.get(slot)
    if (b === undefined) {
      if (tryPlace(r, ask, hosts, slot, pinOf(r, ask, hosts, slot))) continue
      if (notes.placeRejections === null) {
        notes.placeRejections = new Map()
        tryPlace(r, ask, hosts, slot, pinOf(r, ask, hosts, slot), notes.placeRejections)
      }
      notes.unschedulable++
      pending++
      r.out.pending.push({ service, slot, kind: 'unschedulable', host: null })
      continue
    }
    const reason = moveReason(r, spec, slot, b)
    if (reason === null) continue
    if (reason === 'wait' || reason === 'restarting') {
      if (reason === 'wait') {
        notes.waitingCount++
        notes.waiting.add(r.nameOf(b.host))
      } else {
        notes.restartingCount++
        notes.restarting.set(r.nameOf(b.host), r.cluster.byId.get(b.host)?.node.restartingUntil ?? r.now)
      }
      pending++
      r.out.pending.push({ service, slot, kind: 'waiting', host: b.host })
      continue
    }
    if (reason === 'failing' && ask.volume !== null) continue // its data stays on its host
    if (tryMove(r, ask, hosts, slot, b, reason)) continue
    const down = reason === 'host-dead' || reason === 'host-left' || reason === 'host-unknown'
    const rej: Rejections = new Map()
    tryMove(r, ask, hosts, slot, b, reason, rej)
    if (down) {
      notes.unschedulable++
      notes.placeRejections ??= rej
    } else {
      notes.stuck++
      notes.stuckHosts.add(r.nameOf(b.host))
      notes.stuckRejections ??= rej
    }
    pending++
    r.out.pending.push({ service, slot, kind: 'unschedulable', host: b.host })
  }
  if (spec.rebalance && ask.volume === null && pending === 0 && r.out.move.length + r.out.place.length === before) rebalance(r, ask, hosts)
}

/** Move one replica from the busiest eligible host to a host with at least 2 fewer. */
function rebalance(r: Round, ask: Ask, hosts: HostState[]): void {
  let busiest: HostState | undefined
  for (const h of hosts) if (busiest === undefined || r.cluster.count(ask.service, h) > r.cluster.count(ask.service, busiest)) busiest = h
  if (busiest === undefined) return
  const top = r.cluster.count(ask.service, busiest)
  if (top < 2) return
  const to = pickHost(r.cluster, ask, hosts, { strategy: 'spread', exclude: busiest.node.id, pin: null })
  if (to === undefined || r.cluster.count(ask.service, to) + 2 > top) return
  let slot = -1
  for (const [s, b] of r.slotsOf(ask.service)) if (b.host === busiest.node.id && s > slot) slot = s
  const b = r.slotsOf(ask.service).get(slot)
  if (b !== undefined) tryMove(r, ask, [to], slot, b, 'rebalance')
}

function reconcileGlobal(r: Round, spec: ServiceSpec, ask: Ask, hosts: HostState[]): void {
  const service = spec.name
  const slots = r.slotsOf(service)
  const notes = r.notesOf(service)
  const taken = new Set<string>()
  for (const b of slots.values()) taken.add(b.host)
  let next = 0
  let pending = 0
  for (const h of hosts) {
    if (taken.has(h.node.id)) continue
    while (slots.has(next)) next++
    if (tryPlace(r, ask, [h], next, null)) continue
    notes.placeRejections ??= new Map()
    tryPlace(r, ask, [h], next, null, notes.placeRejections)
    notes.unschedulable++
    pending++
    r.out.pending.push({ service, slot: -1, kind: 'unschedulable', host: h.node.id })
  }
  notes.desired = slots.size + pending
}

/**
 * Pass 3: active copies that no committed assignment claims at their host and generation, on hosts
 * that can hear it (alive or suspect): a dead host's last report is listed again once it returns.
 */
function staleCopies(r: Round): void {
  const reachable = (host: string): boolean => {
    const s = r.cluster.byId.get(host)?.node.state
    return s === 'alive' || s === 'suspect'
  }
  const list = r.observed.filter((o) => isActive(o.state) && reachable(o.host))
  list.sort((a, b) => cmpStr(a.service, b.service) || a.slot - b.slot || cmpStr(a.host, b.host) || a.generation - b.generation)
  for (const o of list) {
    const a = r.committed.get(o.service)?.get(o.slot)
    if (a !== undefined && a.host === o.host && a.generation === o.generation) continue
    r.out.stop.push({ service: o.service, slot: o.slot, host: o.host, generation: o.generation, containerId: o.containerId, unassign: false, reason: 'stale' })
  }
}
