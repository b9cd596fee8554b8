// Ranking: among the hosts that pass every filter, pick the best one. Deterministic: ties are
// broken by host id (the hosts are scanned in id order and only a strictly lower score wins).
import type { Ask, Cluster, HostState } from './cluster.ts'
import { DYNAMIC_FILTERS, firstRejection, reject, type FilterContext, type Rejections } from './filters.ts'
import type { Strategy } from './types.ts'

/**
 * A host's rank for the ask as a tuple written into `out`; lower is better, compared in order.
 * - spread: replicas of the service in the host's group per `spread` label (in order), then
 *   replicas of the service on the host, then replicas in total;
 * - binpack: most memory reserved, then most CPU reserved, then most replicas in total.
 * Returns the tuple's length.
 */
export function score(cluster: Cluster, ask: Ask, strategy: Strategy, h: HostState, out: Float64Array): number {
  if (strategy === 'binpack') {
    out[0] = -h.memoryBytes
    out[1] = -h.milliCpu
    out[2] = -h.total
    return 3
  }
  const k = ask.spread.length
  for (let i = 0; i < k; i++) out[i] = cluster.groupCount(ask, i, h)
  out[k] = cluster.count(ask.service, h)
  out[k + 1] = h.total
  return k + 2
}

function lower(a: Float64Array, b: Float64Array, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const x = a[i] ?? 0
    const y = b[i] ?? 0
    if (x !== y) return x < y
  }
  return false
}

/** Options of one pick. */
export interface PickOptions {
  strategy: Strategy
  /** Never this host (a move's source). */
  exclude: string | null
  pin: FilterContext['pin']
  /** When given, every rejected candidate is counted here by reason. */
  rejections?: Rejections
}

/** The best candidate that passes the dynamic filters, or undefined. Candidates passed the static ones. */
export function pickHost(cluster: Cluster, ask: Ask, candidates: readonly HostState[], opts: PickOptions): HostState | undefined {
  const ctx: FilterContext = { cluster, pin: opts.pin }
  let best: HostState | undefined
  let cur = new Float64Array(ask.spread.length + 3)
  let top = new Float64Array(ask.spread.length + 3)
  for (const h of candidates) {
    if (h.node.id === opts.exclude) continue
    const why = firstRejection(DYNAMIC_FILTERS, h, ask, ctx)
    if (why !== null) {
      if (opts.rejections !== undefined) reject(opts.rejections, why, h.node.name)
      continue
    }
    const n = score(cluster, ask, opts.strategy, h, cur)
    if (best === undefined || lower(cur, top, n)) {
      best = h
      const t = top
      top = cur
      cur = t
    }
  }
  return best
}
