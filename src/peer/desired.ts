import type { ReplicaCounts } from '../api/replicas.ts'
import type { ApplyView, HistoryEntryView, PeerApi, RemoveServicesView, ScaleView, ServiceDetailView, ServiceView } from '../api/types.ts'
import { SkeinError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import { DNS_LABEL, decodeService, diffServices, encodeService, planStack, serviceSpecSchema, type Plan, type ServiceSpec, type Stack } from '../model/index.ts'
import { encodeHlc } from '../state/hlc.ts'
import type { StateService } from '../state/service.ts'
import type { Entry, Write } from '../state/types.ts'

/**
 * The desired-state operations of the API (docs/api.md) over the state service: services are
 * keyed by name, each value is the canonical encoding of its spec (src/model/canonical.ts).
 * Every operation that writes does so in ONE `apply` batch: all of it is stored, or none.
 */
export type DesiredStateApi = Required<Pick<PeerApi, 'services' | 'service' | 'history' | 'plan' | 'apply' | 'removeServices' | 'scale'>>

/**
 * Build the operations. `nameOf` turns a writer's peer id into its node name when known; `counts`
 * gives a service's running and desired replicas (0 running without it).
 */
export function createDesiredStateApi(state: StateService, nameOf: (id: string) => string, logger: Logger, counts?: (spec: ServiceSpec) => ReplicaCounts): DesiredStateApi {
  const log = logger.child({ component: 'desired' })
  const badValues = new Set<string>()

  /** The spec held in an entry, or undefined for a tombstone or undecodable bytes (logged once). */
  const specOf = (e: Entry): ServiceSpec | undefined => {
    if (e.value === null) return undefined
    try {
      return decodeService(e.value)
    } catch (err) {
      const id = `${e.key}@${encodeHlc(e.hlc)}`
      if (!badValues.has(id)) log.warn({ key: e.key, err: String(err) }, 'a stored service spec cannot be decoded; it is hidden')
      badValues.add(id)
      return undefined
    }
  }

  const current = (): { entry: Entry; spec: ServiceSpec }[] =>
    state.live().flatMap((entry) => {
      const spec = specOf(entry)
      return spec === undefined ? [] : [{ entry, spec }]
    })

  const view = (entry: Entry, spec: ServiceSpec): ServiceView => ({
    name: spec.name,
    stack: spec.stack,
    image: spec.image,
    mode: spec.mode,
    replicas: spec.replicas,
    revision: entry.revision,
    updatedAt: new Date(entry.hlc.wall).toISOString(),
    writer: nameOf(entry.hlc.node),
    ...(counts?.(spec) ?? { running: 0, desired: spec.mode === 'replicated' ? (spec.replicas ?? 0) : 0, explain: null }),
  })

  const lookup = (name: string): { entry: Entry; spec: ServiceSpec } => {
    const entry = state.get(name)
    const spec = entry === undefined ? undefined : specOf(entry)
    if (entry === undefined || spec === undefined) throw unknownService([name])
    return { entry, spec }
  }

  const plan = (raw: unknown, prune: boolean): Plan => planStack(current().map((c) => c.spec), checkStack(raw), { prune })

  return {
    services: () => current().map(({ entry, spec }) => view(entry, spec)),
    service(name: string): ServiceDetailView {
      const { entry, spec } = lookup(name)
      return { ...view(entry, spec), writerId: entry.hlc.node, hlc: encodeHlc(entry.hlc), spec: spec as unknown as Record<string, unknown> }
    },
    history(name: string): HistoryEntryView[] {
      const list = state.history(name)
      const now = state.get(name)
      if (list.length === 0 || now === undefined) throw unknownService([name])
      let prev: ServiceSpec | undefined
      return list.map((e) => {
        const spec = specOf(e)
        const action = spec === undefined ? 'remove' : prev === undefined ? 'create' : 'change'
        const changes = spec !== undefined && prev !== undefined ? diffServices(prev, spec) : []
        prev = spec
        const isCurrent = e.hlc.wall === now.hlc.wall && e.hlc.logical === now.hlc.logical && e.hlc.node === now.hlc.node
        return {
          revision: e.revision, time: new Date(e.hlc.wall).toISOString(), writer: nameOf(e.hlc.node), writerId: e.hlc.node, action,
          image: spec?.image ?? null, replicas: spec?.replicas ?? null, mode: spec?.mode ?? null, changes, current: isCurrent,
        }
      })
    },
    plan,
    async apply(raw: unknown, prune: boolean): Promise<ApplyView> {
      const p = plan(raw, prune)
      if (p.conflicts.length > 0) {
        const list = p.conflicts.map((c) => `${c.name} (stack ${c.stack})`).join(', ')
        throw new SkeinError('conflict', `nothing applied: these names belong to services of another stack: ${list}`, { hint: 'rename them, or remove the other services first (`skein rm`)' })
      }
      const writes: Write[] = [
        ...p.create.map((s) => ({ key: s.name, value: encodeService(s) })),
        ...p.change.map((c) => ({ key: c.name, value: encodeService(c.to) })),
        ...p.remove.map((s) => ({ key: s.name, value: null })),
      ]
      if (writes.length === 0) return { plan: p, applied: [] }
      const results = await state.apply(writes)
      const action = (i: number): 'create' | 'change' | 'remove' => (i < p.create.length ? 'create' : i < p.create.length + p.change.length ? 'change' : 'remove')
      return { plan: p, applied: results.map((r, i) => ({ name: r.key, action: action(i), revision: r.entry?.revision ?? 0 })) }
    },
    async removeServices(names: string[]): Promise<RemoveServicesView> {
      const unique = [...new Set(names)]
      const missing = unique.filter((n) => (state.get(n)?.value ?? null) === null)
      if (missing.length > 0) throw unknownService(missing)
      const results = await state.apply(unique.map((key) => ({ key, value: null })))
      return { removed: results.map((r) => ({ name: r.key, revision: r.entry?.revision ?? 0 })) }
    },
    async scale(changes: { name: string; replicas: number }[]): Promise<ScaleView> {
      const byName = new Map(changes.map((c) => [c.name, c.replicas]))
      const missing = [...byName.keys()].filter((n) => (state.get(n)?.value ?? null) === null)
      if (missing.length > 0) throw unknownService(missing)
      const plans = [...byName].map(([name, to]) => {
        const { spec } = lookup(name)
        if (spec.mode === 'global') throw new SkeinError('global-service', `${name} is a global service (one replica per matching host): it cannot be scaled`, { hint: 'change its placement instead' })
        return { name, from: spec.replicas ?? 0, to, value: encodeService({ ...spec, replicas: to }) }
      })
      const results = await state.apply(plans.map((p) => ({ key: p.name, value: p.value })))
      return { scaled: plans.map((p, i) => ({ name: p.name, from: p.from, to: p.to, revision: results[i]?.entry?.revision ?? 0, written: results[i]?.written ?? false })) }
    },
  }
}

function unknownService(names: string[]): SkeinError {
  const list = names.join(', ')
  return new SkeinError('unknown-service', names.length === 1 ? `no service is named ${list}` : `no services are named ${list}`, { hint: '`skein services` lists them; nothing was changed' })
}

/**
 * Re-validate a stack from the API (an input boundary): a DNS-label name, and every service a
 * valid spec of that stack with a unique name. Every problem is reported, in one error.
 */
export function checkStack(raw: unknown): Stack {
  const problems: string[] = []
  const obj = (typeof raw === 'object' && raw !== null ? raw : {}) as { name?: unknown; services?: unknown }
  const name = typeof obj.name === 'string' ? obj.name : ''
  if (!DNS_LABEL.test(name)) problems.push(`stack name ${JSON.stringify(obj.name)}: expected a DNS label (a-z, 0-9, -)`)
  const list = Array.isArray(obj.services) ? obj.services : []
  if (!Array.isArray(obj.services)) problems.push('services: expected a list')
  const services: ServiceSpec[] = []
  const seen = new Set<string>()
  list.forEach((s, i) => {
    const r = serviceSpecSchema.safeParse(s)
    if (!r.success) {
      for (const issue of r.error.issues) problems.push(`services[${i}].${issue.path.join('.') || '(spec)'}: ${issue.message}`)
      return
    }
    if (r.data.stack !== name) problems.push(`services[${i}] (${r.data.name}): belongs to stack ${r.data.stack}, not ${name}`)
    if (seen.has(r.data.name)) problems.push(`services[${i}]: the name ${r.data.name} is used twice`)
    seen.add(r.data.name)
    services.push(r.data)
  })
  if (problems.length > 0) throw new SkeinError('invalid-spec', `invalid stack, nothing applied: ${problems.slice(0, 20).join('; ')}${problems.length > 20 ? ` (and ${problems.length - 20} more)` : ''}`)
  return { name, services, volumes: {}, configs: {}, secrets: {} }
}
