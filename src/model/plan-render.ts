// Plans as text for the terminal:
//   + create web (image nginx:1.27, 3 replicas)
//   ~ change web: replicas 3 → 5
//   - remove old
import type { FieldChange, Plan } from './plan.ts'
import type { ServiceSpec } from './spec.ts'
import { formatConstraint } from './syntax.ts'
import { formatCpu, formatDuration, formatMemory } from './units.ts'
import type { Constraint } from './spec.ts'

/** Options for {@link renderPlan}. */
export interface RenderOptions {
  /** ANSI colours (green create, yellow change, red remove). Default false. */
  color?: boolean
}

const COLORS = { green: '\u001b[32m', yellow: '\u001b[33m', red: '\u001b[31m', dim: '\u001b[2m', reset: '\u001b[0m' }

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A path as people wrote it: units dropped from the names (`resources.limits.memory`, `update.delay`). */
export function displayPath(path: string): string {
  return path.replace(/milliCpu/g, 'cpu').replace(/(memory|size)Bytes/g, '$1').replace(/([a-z])Ms\b/g, '$1')
}

function formatPort(p: Record<string, unknown>): string {
  const host = p['hostIp'] === null || p['hostIp'] === undefined ? '' : `${String(p['hostIp'])}:`
  const pub = p['published'] === null ? '' : `${host}${String(p['published'])}:`
  return `${pub}${String(p['target'])}/${String(p['protocol'])} (${String(p['mode'])})`
}

function formatMount(m: Record<string, unknown>): string {
  if (m['type'] === 'tmpfs') return `tmpfs:${String(m['target'])}`
  const ro = m['readOnly'] === true ? ':ro' : ''
  return m['source'] === null ? `${String(m['target'])}${ro}` : `${String(m['source'])}:${String(m['target'])}${ro}`
}

/** A value as the plan shows it, using the path to pick units. */
export function formatValue(path: string, v: unknown): string {
  if (v === null) return 'none'
  if (v === undefined) return '(absent)'
  const leaf = path.replace(/\[[^\]]*\]$/, '').split('.').pop() ?? ''
  if (typeof v === 'number') {
    if (/Ms$/.test(leaf)) return formatDuration(v)
    if (/Bytes$/.test(leaf)) return formatMemory(v)
    if (leaf === 'milliCpu') return formatCpu(v)
    if (leaf === 'mode' && /^(mounts|configs|secrets)\[/.test(path)) return `0${v.toString(8)}`
    return String(v)
  }
  if (typeof v === 'string') return /^[\w./:@-]+$/.test(v) ? v : JSON.stringify(v)
  if (typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) {
    if (leaf === 'constraints') return v.length === 0 ? '[]' : v.map((c) => formatConstraint(c as Constraint)).join(', ')
    return JSON.stringify(v)
  }
  if (isMap(v)) {
    if (path.startsWith('ports[')) return formatPort(v)
    if (path.startsWith('mounts[')) return formatMount(v)
    if (/^(configs|secrets)\[/.test(path)) return `${String(v['source'])} at ${String(v['target'])}`
    if (path === 'healthcheck') return formatHealth(v)
    if (path === 'onHostLoss') return v['action'] === 'wait' ? `wait ${formatDuration(Number(v['afterMs']))}` : 'replace'
  }
  return JSON.stringify(v)
}

function formatHealth(h: Record<string, unknown>): string {
  switch (h['kind']) {
    case 'none': return 'disabled'
    case 'exec': return `exec ${JSON.stringify(h['command'])}`
    case 'shell': return `shell ${JSON.stringify(h['command'])}`
    case 'http': return `http ${String(h['path'])} on ${String(h['port'])}`
    case 'tcp': return `tcp ${String(h['port'])}`
    default: return JSON.stringify(h)
  }
}

/** One change as text: `replicas 3 → 5`, `+ env.TZ Europe/Berlin`, `- ports[8080/tcp] 8080:80/tcp (ingress)`. */
export function formatChange(c: FieldChange): string {
  const p = displayPath(c.path)
  if (!('from' in c)) return `${p}: + ${formatValue(c.path, c.to)}`
  if (!('to' in c)) return `${p}: - ${formatValue(c.path, c.from)}`
  return `${p} ${formatValue(c.path, c.from)} → ${formatValue(c.path, c.to)}`
}

/** A one-line summary of a service: `image nginx:1.27, 3 replicas`. */
export function summarizeService(s: ServiceSpec): string {
  const count = s.mode === 'global' ? 'global' : `${s.replicas ?? 0} ${s.replicas === 1 ? 'replica' : 'replicas'}`
  return `image ${s.image}, ${count}`
}

/** The plan as terminal text, one line per service (changes with several fields get one line each). */
export function renderPlan(plan: Plan, opts: RenderOptions = {}): string {
  const c = (color: keyof typeof COLORS, s: string) => (opts.color === true ? `${COLORS[color]}${s}${COLORS.reset}` : s)
  const lines: string[] = []
  const counts = [
    `${plan.create.length} to create`, `${plan.change.length} to change`, `${plan.remove.length} to remove`, `${plan.unchanged.length} unchanged`,
  ]
  lines.push(`stack ${plan.stack}: ${counts.join(', ')}`)
  for (const conflict of plan.conflicts) lines.push(c('red', `! conflict ${conflict.name}: the name belongs to a service of stack ${conflict.stack}`))
  for (const s of plan.create) lines.push(c('green', `+ create ${s.name} (${summarizeService(s)})`))
  for (const ch of plan.change) {
    const first = ch.diff[0]
    if (ch.diff.length === 1 && first !== undefined) lines.push(c('yellow', `~ change ${ch.name}: ${formatChange(first)}`))
    else {
      lines.push(c('yellow', `~ change ${ch.name}:`))
      for (const d of ch.diff) lines.push(c('yellow', `    ${formatChange(d)}`))
    }
  }
  for (const s of plan.remove) lines.push(c('red', `- remove ${s.name}`))
  if (plan.absent.length > 0) {
    lines.push(c('dim', `  (not in the file, kept: ${plan.absent.join(', ')}; --prune removes them)`))
  }
  return lines.join('\n')
}
