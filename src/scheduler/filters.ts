// The filter pipeline (docs/replicas.md, "Filters"). Each filter answers null (the host fits) or
// the reason it does not, phrased to read as "<reason> on h1, h2". A rejected host is counted
// under the first filter that rejects it, and the counts become the `explain` sentence.
import type { Constraint } from '../model/spec.ts'
import { formatConstraint } from '../model/syntax.ts'
import type { Ask, Cluster, HostState } from './cluster.ts'
import type { NodeInfo } from './types.ts'

/** Per-placement context of the dynamic filters. */
export interface FilterContext {
  cluster: Cluster
  /** Only this host may take the replica (volume affinity), with its name for the explanation. */
  pin: { id: string; name: string } | null
}

/** A filter: null when the host fits, otherwise the reason. */
export type Filter = (h: HostState, ask: Ask, ctx: FilterContext) => string | null

/** The value a constraint looks at, or undefined when the host has none. */
export function attributeOf(node: NodeInfo, c: Constraint): string | undefined {
  switch (c.attribute) {
    case 'node.labels': return c.label === null ? undefined : node.labels[c.label]
    case 'node.hostname': return node.name
    case 'node.id': return node.id
    case 'node.platform.os': return node.labels['platform.os']
    case 'node.platform.arch': return node.labels['platform.arch']
  }
}

/** Does the host satisfy the constraint? `notIn` matches a host without the attribute. */
export function constraintMatches(node: NodeInfo, c: Constraint): boolean {
  const v = attributeOf(node, c)
  if (c.op === 'in') return v !== undefined && c.values.includes(v)
  return v === undefined || !c.values.includes(v)
}

/** Availability: alive and not drained. */
export const availability: Filter = (h) => (h.node.state !== 'alive' ? 'host not alive' : h.node.drained ? 'host drained' : null)

/** Label and attribute constraints. */
export const constraints: Filter = (h, ask) => {
  for (const c of ask.spec.placement.constraints) if (!constraintMatches(h.node, c)) return `constraint ${formatConstraint(c)} not met`
  return null
}

/** Volume affinity: when the context pins the slot to the host holding its data. */
export const volume: Filter = (h, ask, ctx) => (ctx.pin !== null && ctx.pin.id !== h.node.id ? `volume ${ask.volume ?? ''} is on ${ctx.pin.name}, not` : null)

/** Reservations: what is reserved on the host plus this replica fits its capacity. */
export const resources: Filter = (h, ask) => {
  const cap = h.node.capacity
  if (cap.memoryBytes !== null && ask.memoryBytes > 0 && h.memoryBytes + ask.memoryBytes > cap.memoryBytes) return 'insufficient memory'
  if (cap.milliCpu !== null && ask.milliCpu > 0 && h.milliCpu + ask.milliCpu > cap.milliCpu) return 'insufficient cpu'
  return null
}

/** Published ports: every one must be free on the host (ingress and host mode alike). */
export const ports: Filter = (h, ask) => {
  for (const p of ask.ports) if (h.ports.has(p.key)) return `port ${p.label} taken`
  return null
}

/** At most `maxPerNode` replicas of the service on one host. */
export const maxPerNode: Filter = (h, ask, ctx) =>
  ask.maxPerNode !== null && ctx.cluster.count(ask.service, h) >= ask.maxPerNode ? `max ${ask.maxPerNode} per node reached` : null

/** Filters that depend only on the host and the spec: evaluated once per service and round. */
export const STATIC_FILTERS: readonly Filter[] = [availability, constraints]
/** Filters that depend on what is already placed: evaluated per placement. */
export const DYNAMIC_FILTERS: readonly Filter[] = [volume, resources, ports, maxPerNode]

/** The first reason in `filters` that rejects the host, or null. */
export function firstRejection(filters: readonly Filter[], h: HostState, ask: Ask, ctx: FilterContext): string | null {
  for (const f of filters) {
    const r = f(h, ask, ctx)
    if (r !== null) return r
  }
  return null
}

/** Rejected host names by reason, in the order first seen. */
export type Rejections = Map<string, string[]>

/** Count a rejection. */
export function reject(rej: Rejections, reason: string, host: string): void {
  const list = rej.get(reason)
  if (list === undefined) rej.set(reason, [host])
  else list.push(host)
}

/** Most hosts named in one reason; more are summarised as "N hosts". */
export const MAX_NAMED_HOSTS = 5

/**
 * "insufficient memory on h2, h3; port 80 taken on h1": reasons with more hosts first (then by
 * text), host names sorted, more than MAX_NAMED_HOSTS summarised.
 */
export function formatRejections(rej: Rejections): string {
  if (rej.size === 0) return 'no hosts'
  return [...rej]
    .sort(([ra, a], [rb, b]) => b.length - a.length || (ra < rb ? -1 : ra > rb ? 1 : 0))
    .map(([reason, hosts]) => {
      const sorted = [...hosts].sort()
      return `${reason} on ${sorted.length > MAX_NAMED_HOSTS ? `${sorted.length} hosts` : sorted.join(', ')}`
    })
    .join('; ')
}
