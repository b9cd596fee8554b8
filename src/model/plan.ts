// What applying a stack would do: services to create, to change (with a field-level diff), to
// remove (only with prune, only of this stack), and those left as they are.
import { canonicalService, cmp } from './canonical.ts'
import type { ServiceSpec, Stack } from './spec.ts'

/** One changed field. `from` is absent for an added element, `to` for a removed one. */
export interface FieldChange {
  /** Canonical path: `replicas`, `resources.limits.memoryBytes`, `ports[8080/tcp].target`, `env.TZ`. */
  path: string
  from?: unknown
  to?: unknown
}

/** A service that exists and would change. */
export interface ServiceChange {
  name: string
  diff: FieldChange[]
  from: ServiceSpec
  to: ServiceSpec
}

/** The plan for applying one stack. */
export interface Plan {
  stack: string
  create: ServiceSpec[]
  change: ServiceChange[]
  /** Services of this stack that are not in the file; filled only with `prune`. */
  remove: ServiceSpec[]
  /** Names of services in the file that would not change. */
  unchanged: string[]
  /** Names of services of this stack that are not in the file and stay (no `prune`). */
  absent: string[]
  /** Services in the file whose name is taken by a service of another stack: applying must refuse. */
  conflicts: { name: string; stack: string }[]
}

/** Options for {@link planStack}. */
export interface PlanOptions {
  /** Remove this stack's services that the file does not have. */
  prune?: boolean
}

/**
 * Plans applying `stack` over the services that exist now (any stacks; canonical form). Services
 * are matched by name; only services of the same stack are ever removed.
 */
export function planStack(current: readonly ServiceSpec[], stack: Stack, opts: PlanOptions = {}): Plan {
  const byName = new Map(current.map((s) => [s.name, s]))
  const plan: Plan = { stack: stack.name, create: [], change: [], remove: [], unchanged: [], absent: [], conflicts: [] }
  const inFile = new Set<string>()
  for (const wanted of [...stack.services].sort((a, b) => cmp(a.name, b.name))) {
    inFile.add(wanted.name)
    const to = canonicalService(wanted)
    const now = byName.get(wanted.name)
    if (now === undefined) plan.create.push(to)
    else if (now.stack !== stack.name) plan.conflicts.push({ name: wanted.name, stack: now.stack })
    else {
      const from = canonicalService(now)
      const diff = diffServices(from, to)
      if (diff.length === 0) plan.unchanged.push(wanted.name)
      else plan.change.push({ name: wanted.name, diff, from, to })
    }
  }
  for (const s of [...current].sort((a, b) => cmp(a.name, b.name))) {
    if (s.stack !== stack.name || inFile.has(s.name)) continue
    if (opts.prune === true) plan.remove.push(s)
    else plan.absent.push(s.name)
  }
  return plan
}

/** True if the plan changes nothing. */
export function planIsEmpty(plan: Plan): boolean {
  return plan.create.length === 0 && plan.change.length === 0 && plan.remove.length === 0
}

/** How elements of a list are matched between two versions, by canonical list path. */
const IDENTITY: Readonly<Record<string, (item: Record<string, unknown>) => string>> = {
  ports: (p) => `${String(p['published'] ?? p['target'])}/${String(p['protocol'])}`,
  mounts: (m) => String(m['target']),
  configs: (c) => String(c['target']),
  secrets: (c) => String(c['target']),
}

/** Fields that select a variant: when they differ, the whole object is one change. */
const VARIANT_KEYS = ['kind', 'action', 'type'] as const

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

function join(base: string, key: string): string {
  const plain = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)
  if (base === '') return plain ? key : `[${JSON.stringify(key)}]`
  return plain ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`
}

function diffValue(path: string, a: unknown, b: unknown, out: FieldChange[]): void {
  if (same(a, b)) return
  if (isMap(a) && isMap(b) && VARIANT_KEYS.every((k) => a[k] === b[k])) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort(cmp)
    for (const k of keys) {
      const p = join(path, k)
      if (!(k in a)) out.push({ path: p, to: b[k] })
      else if (!(k in b)) out.push({ path: p, from: a[k] })
      else diffValue(p, a[k], b[k], out)
    }
    return
  }
  const identity = IDENTITY[path]
  if (identity !== undefined && Array.isArray(a) && Array.isArray(b) && [...a, ...b].every(isMap)) {
    const left = new Map((a as Record<string, unknown>[]).map((x) => [identity(x), x]))
    const right = new Map((b as Record<string, unknown>[]).map((x) => [identity(x), x]))
    if (left.size === a.length && right.size === b.length) {
      for (const [id, x] of left) {
        const y = right.get(id)
        if (y === undefined) out.push({ path: `${path}[${id}]`, from: x })
        else diffValue(`${path}[${id}]`, x, y, out)
      }
      for (const [id, y] of right) if (!left.has(id)) out.push({ path: `${path}[${id}]`, to: y })
      return
    }
  }
  out.push({ path, from: a, to: b })
}

/** The field-level differences between two canonical service specs. */
export function diffServices(from: ServiceSpec, to: ServiceSpec): FieldChange[] {
  const out: FieldChange[] = []
  diffValue('', from, to, out)
  return out
}
