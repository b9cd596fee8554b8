// The working state of one reconcile round, shared by the replicated and global passes.
import type { ServiceSpec } from '../model/spec.ts'
import { askOf, Cluster, cmpStr, type Ask, type HostState } from './cluster.ts'
import { formatRejections, reject, STATIC_FILTERS, firstRejection, type Rejections } from './filters.ts'
import { DEFAULT_SCHEDULER_CONFIG, slotKey, type Assignment, type ObservedReplica, type SchedulerConfig, type SchedulerInput, type SchedulerOutput } from './types.ts'

/** A slot's current binding as the round sees it (committed, then updated by this round's decisions). */
export interface Binding {
  host: string
  generation: number
}

/** Key of one copy of a slot (host and generation). */
export function copyKey(service: string, slot: number, host: string, generation: number): string {
  return `${service}\u0000${slot}\u0000${host}\u0000${generation}`
}

/** Explanation material gathered for one service. */
export interface ServiceNotes {
  desired: number
  unschedulable: number
  placeRejections: Rejections | null
  waiting: Set<string>
  waitingCount: number
  /** Dead hosts that announced a restart (name → until when, epoch ms), and their waiting slots. */
  restarting: Map<string, number>
  restartingCount: number
  stuck: number
  stuckHosts: Set<string>
  stuckRejections: Rejections | null
}

/** One round's indexes and output. */
export class Round {
  readonly cfg: SchedulerConfig
  readonly now: number
  readonly cluster: Cluster
  readonly specs: ServiceSpec[]
  readonly asks = new Map<string, Ask>()
  readonly revisions: Readonly<Record<string, number>>
  /** Committed assignments: service → slot → assignment (the newest generation wins on duplicates). */
  readonly committed = new Map<string, Map<number, Assignment>>()
  /** Live bindings: service → slot → binding, changed as the round decides. */
  readonly slots = new Map<string, Map<number, Binding>>()
  /** Observed copies by copyKey. */
  readonly copies = new Map<string, ObservedReplica>()
  /** Highest generation known per slotKey (committed or observed). */
  readonly maxGen = new Map<string, number>()
  /** Host of the newest observed copy per slotKey (a volume service's data home). */
  readonly home = new Map<string, string>()
  readonly observed: readonly ObservedReplica[]
  readonly out: SchedulerOutput = { place: [], move: [], stop: [], pending: [], explain: {} }
  readonly notes = new Map<string, ServiceNotes>()

  constructor(input: SchedulerInput) {
    this.cfg = { ...DEFAULT_SCHEDULER_CONFIG, ...input.config }
    this.now = input.now
    this.cluster = new Cluster(input.nodes)
    this.specs = [...input.services].sort((a, b) => cmpStr(a.name, b.name))
    for (const s of this.specs) this.asks.set(s.name, askOf(s))
    this.revisions = input.revisions ?? {}
    this.observed = input.observed
    for (const a of input.assignments) {
      let m = this.committed.get(a.service)
      if (m === undefined) this.committed.set(a.service, (m = new Map()))
      const prev = m.get(a.slot)
      if (prev === undefined || prev.generation < a.generation) m.set(a.slot, a)
      this.#bumpGen(a.service, a.slot, a.generation)
    }
    for (const [service, m] of this.committed) {
      const live = new Map<number, Binding>()
      const ask = this.asks.get(service)
      for (const [slot, a] of m) {
        live.set(slot, { host: a.host, generation: a.generation })
        if (ask !== undefined) this.cluster.add(ask, a.host)
      }
      this.slots.set(service, live)
    }
    const newest = new Map<string, number>()
    for (const o of input.observed) {
      this.copies.set(copyKey(o.service, o.slot, o.host, o.generation), o)
      const k = slotKey(o.service, o.slot)
      this.#bumpGen(o.service, o.slot, o.generation)
      const n = newest.get(k)
      if (n === undefined || n < o.generation || (n === o.generation && cmpStr(o.host, this.home.get(k) ?? '') < 0)) {
        newest.set(k, o.generation)
        this.home.set(k, o.host)
      }
    }
  }

  #bumpGen(service: string, slot: number, g: number): void {
    const k = slotKey(service, slot)
    if ((this.maxGen.get(k) ?? 0) < g) this.maxGen.set(k, g)
  }

  /** The live slot map of a service (created empty). */
  slotsOf(service: string): Map<number, Binding> {
    let m = this.slots.get(service)
    if (m === undefined) this.slots.set(service, (m = new Map()))
    return m
  }

  /** Notes of a service (created empty). */
  notesOf(service: string): ServiceNotes {
    let n = this.notes.get(service)
    if (n === undefined) {
      n = { desired: 0, unschedulable: 0, placeRejections: null, waiting: new Set(), waitingCount: 0, restarting: new Map(), restartingCount: 0, stuck: 0, stuckHosts: new Set(), stuckRejections: null }
      this.notes.set(service, n)
    }
    return n
  }

  /** Hosts passing the static filters for an ask, and the static rejections of the others. */
  candidates(ask: Ask): { hosts: HostState[]; rejections: Rejections } {
    const hosts: HostState[] = []
    const rejections: Rejections = new Map()
    const ctx = { cluster: this.cluster, pin: null }
    for (const h of this.cluster.hosts) {
      const why = firstRejection(STATIC_FILTERS, h, ask, ctx)
      if (why === null) hosts.push(h)
      else reject(rejections, why, h.node.name)
    }
    return { hosts, rejections }
  }

  /** The container id the observed state gives for a copy, if any. */
  containerOf(service: string, slot: number, host: string, generation: number): string | null {
    return this.copies.get(copyKey(service, slot, host, generation))?.containerId ?? null
  }

  /** Host name for an id (the id itself when unknown). */
  nameOf(hostId: string): string {
    return this.cluster.byId.get(hostId)?.node.name ?? hostId
  }

  /** Turn the notes into `explain` sentences. */
  finishExplain(staticRejections: Map<string, Rejections>): void {
    for (const [service, n] of this.notes) {
      const parts: string[] = []
      const merged = (dyn: Rejections | null): string => {
        const all: Rejections = new Map()
        for (const [r, hs] of staticRejections.get(service) ?? new Map<string, string[]>()) all.set(r, [...hs])
        for (const [r, hs] of dyn ?? new Map<string, string[]>()) all.set(r, [...(all.get(r) ?? []), ...hs])
        return formatRejections(all)
      }
      if (n.unschedulable > 0) parts.push(`${n.unschedulable} of ${n.desired} replicas pending: ${merged(n.placeRejections)}`)
      if (n.waitingCount > 0) parts.push(`${n.waitingCount} of ${n.desired} replicas waiting for lost host ${[...n.waiting].sort().join(', ')}`)
      if (n.restartingCount > 0) {
        const hosts = [...n.restarting].sort(([a], [b]) => cmpStr(a, b)).map(([name, until]) => `${name} (until ${clockTime(until)})`)
        parts.push(`${n.restartingCount} of ${n.desired} replicas waiting for restarting host ${hosts.join(', ')}`)
      }
      if (n.stuck > 0) parts.push(`${n.stuck} of ${n.desired} replicas cannot move off ${[...n.stuckHosts].sort().join(', ')}: ${merged(n.stuckRejections)}`)
      if (parts.length > 0) this.out.explain[service] = parts.join('; ')
    }
  }
}

/** The UTC time of day of an epoch time, `HH:MM:SS UTC` (the same on every peer). */
export function clockTime(ms: number): string {
  const day = 86_400_000
  const t = Math.floor((((ms % day) + day) % day) / 1000)
  const two = (n: number): string => String(n).padStart(2, '0')
  return `${two(Math.floor(t / 3600))}:${two(Math.floor(t / 60) % 60)}:${two(t % 60)} UTC`
}
