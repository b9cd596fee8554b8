// The scheduler's working index of hosts: reservations, published ports and per-service replica
// counts, kept up to date as a round decides, so that each filter is O(1) per host.
import type { ServiceSpec } from '../model/spec.ts'
import type { NodeInfo } from './types.ts'

/** What one replica of a service asks of a host (derived once per round from its spec). */
export interface Ask {
  service: string
  spec: ServiceSpec
  milliCpu: number
  memoryBytes: number
  /** Published ports as `protocol/port` keys, with how they read in an explanation. */
  ports: { key: string; label: string }[]
  maxPerNode: number | null
  spread: string[]
  /** The first named local volume, or null: slots of such a service keep to their data. */
  volume: string | null
}

/** One host and what is reserved on it so far. */
export interface HostState {
  node: NodeInfo
  /** Position in the id-sorted host list. */
  idx: number
  milliCpu: number
  memoryBytes: number
  /** Replicas of every service. */
  total: number
  /** Published port key → replicas using it. */
  ports: Map<string, number>
}

/** Byte-wise string order (locale-free, so the same on every peer). */
export function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Derive a service's ask from its spec. */
export function askOf(spec: ServiceSpec): Ask {
  const r = spec.resources.reservations
  const ports = spec.ports
    .filter((p) => p.published !== null)
    .map((p) => ({ key: `${p.protocol}/${p.published ?? 0}`, label: p.protocol === 'tcp' ? `${p.published ?? 0}` : `${p.published ?? 0}/${p.protocol}` }))
  let volume: string | null = null
  for (const m of spec.mounts) {
    if (m.type === 'volume' && m.source !== null && (m.volume === null || m.volume.driver === 'local')) {
      volume = m.volume?.name ?? m.source
      break
    }
  }
  return {
    service: spec.name, spec, milliCpu: r.milliCpu ?? 0, memoryBytes: r.memoryBytes ?? 0, ports,
    maxPerNode: spec.placement.maxPerNode, spread: spec.placement.spread, volume,
  }
}

/** Hosts (sorted by id) with their reservations and per-service counts. */
export class Cluster {
  readonly hosts: HostState[]
  readonly byId = new Map<string, HostState>()
  readonly #counts = new Map<string, Int32Array>()
  /** service → spread key position → label value → replicas. */
  readonly #groups = new Map<string, Map<string, number>[]>()

  constructor(nodes: readonly NodeInfo[]) {
    this.hosts = [...nodes].sort((a, b) => cmpStr(a.id, b.id)).map((node, idx) => ({ node, idx, milliCpu: 0, memoryBytes: 0, total: 0, ports: new Map() }))
    for (const h of this.hosts) this.byId.set(h.node.id, h)
  }

  /** Replicas of `service` on host `h`. */
  count(service: string, h: HostState): number {
    return this.#counts.get(service)?.[h.idx] ?? 0
  }

  /** Replicas of the ask's service in host `h`'s group for spread key number `k`. */
  groupCount(ask: Ask, k: number, h: HostState): number {
    const key = ask.spread[k] ?? ''
    return this.#groups.get(ask.service)?.[k]?.get(h.node.labels[key] ?? '') ?? 0
  }

  /** Record a replica of the ask's service on a host (unknown hosts are ignored). */
  add(ask: Ask, hostId: string): void {
    this.#change(ask, hostId, 1)
  }

  /** Forget a replica of the ask's service on a host. */
  remove(ask: Ask, hostId: string): void {
    this.#change(ask, hostId, -1)
  }

  #change(ask: Ask, hostId: string, d: number): void {
    const h = this.byId.get(hostId)
    if (h === undefined) return
    h.milliCpu += d * ask.milliCpu
    h.memoryBytes += d * ask.memoryBytes
    h.total += d
    for (const p of ask.ports) {
      const n = (h.ports.get(p.key) ?? 0) + d
      if (n > 0) h.ports.set(p.key, n)
      else h.ports.delete(p.key)
    }
    let counts = this.#counts.get(ask.service)
    if (counts === undefined) {
      counts = new Int32Array(this.hosts.length)
      this.#counts.set(ask.service, counts)
    }
    counts[h.idx] = (counts[h.idx] ?? 0) + d
    if (ask.spread.length > 0) {
      let groups = this.#groups.get(ask.service)
      if (groups === undefined) {
        groups = ask.spread.map(() => new Map<string, number>())
        this.#groups.set(ask.service, groups)
      }
      ask.spread.forEach((key, k) => {
        const g = groups[k]
        if (g === undefined) return
        const v = h.node.labels[key] ?? ''
        g.set(v, (g.get(v) ?? 0) + d)
      })
    }
  }
}
