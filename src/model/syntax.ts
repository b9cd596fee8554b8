// The short text forms both formats share: ports (`127.0.0.1:8080:80/tcp`), volumes
// (`data:/var/lib/data:ro`), placement constraints (`node.labels.zone == attic`) and commands
// split like a shell would. Each parser returns the parsed value or a Fail saying what is wrong.
import { LABEL_KEY, type Constraint } from './spec.ts'

/** A parse failure with a message that says what is allowed. */
export class Fail {
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
}

/** Splits text into words like a POSIX shell, without expansion: quotes and backslashes group. */
export function shellWords(text: string): string[] | Fail {
  const words: string[] = []
  let cur = ''
  let inWord = false
  let i = 0
  while (i < text.length) {
    const c = text[i] ?? ''
    if (c === "'") {
      const end = text.indexOf("'", i + 1)
      if (end < 0) return new Fail('expected a command; it has an unterminated single quote')
      cur += text.slice(i + 1, end)
      inWord = true
      i = end + 1
    } else if (c === '"') {
      i++
      let closed = false
      while (i < text.length) {
        const d = text[i] ?? ''
        if (d === '"') { closed = true; i++; break }
        if (d === '\\' && i + 1 < text.length && '"\\$`\n'.includes(text[i + 1] ?? '')) { cur += text[i + 1]; i += 2; continue }
        cur += d
        i++
      }
      if (!closed) return new Fail('expected a command; it has an unterminated double quote')
      inWord = true
    } else if (c === '\\') {
      if (i + 1 < text.length && text[i + 1] !== '\n') { cur += text[i + 1]; inWord = true }
      i += 2
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur)
      cur = ''
      inWord = false
      i++
    } else {
      cur += c
      inWord = true
      i++
    }
  }
  if (inWord) words.push(cur)
  return words
}

/** A port parsed from short syntax, before defaults. */
export interface ShortPort {
  target: number
  published: number | null
  protocol: 'tcp' | 'udp'
  hostIp: string | null
}

function portRange(text: string): [number, number] | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text)
  if (m === null) return undefined
  const a = Number(m[1])
  const b = m[2] === undefined ? a : Number(m[2])
  if (a < 1 || b > 65535 || b < a) return undefined
  return [a, b]
}

const PORT_EXPECTED = 'expected a port like "8080:80", "127.0.0.1:8080:80/udp" or "80"'

/**
 * Parses Compose short port syntax: `[[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL]`, where PUBLISHED
 * and TARGET may be ranges of the same length (`9090-9091:8080-8081`). A range expands to one
 * port each. IPv6 host addresses are written in brackets (`[::1]:8080:80`).
 */
export function parsePortShort(input: string | number): ShortPort[] | Fail {
  let text = String(input).trim()
  let protocol: 'tcp' | 'udp' = 'tcp'
  const slash = text.lastIndexOf('/')
  if (slash >= 0) {
    const p = text.slice(slash + 1).toLowerCase()
    if (p !== 'tcp' && p !== 'udp') return new Fail(`expected protocol tcp or udp, got "${text.slice(slash + 1)}"`)
    protocol = p
    text = text.slice(0, slash)
  }
  let hostIp: string | null = null
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(.*)$/.exec(text)
  if (v6 !== null) { hostIp = v6[1] ?? null; text = v6[2] ?? '' }
  const parts = text.split(':')
  if (hostIp === null && parts.length === 3) hostIp = parts.shift() ?? null
  if (hostIp !== null && !/^(\d{1,3}\.){3}\d{1,3}$|:/.test(hostIp)) return new Fail(`${PORT_EXPECTED}; "${hostIp}" is not an IP address`)
  if (parts.length > 2 || parts.length === 0) return new Fail(PORT_EXPECTED)
  const target = portRange(parts[parts.length - 1] ?? '')
  const published = parts.length === 2 ? portRange(parts[0] ?? '') : null
  if (target === undefined || published === undefined) return new Fail(PORT_EXPECTED)
  const count = target[1] - target[0] + 1
  if (published !== null && published[1] - published[0] + 1 !== count) {
    return new Fail('expected published and target ranges of the same length')
  }
  const out: ShortPort[] = []
  for (let i = 0; i < count; i++) out.push({ target: target[0] + i, published: published === null ? null : published[0] + i, protocol, hostIp })
  return out
}

/** A mount parsed from short syntax. Relative bind sources are left for the caller to resolve. */
export interface ShortMount {
  type: 'volume' | 'bind'
  source: string | null
  target: string
  readOnly: boolean
  /** Access modes other than ro/rw, which the caller may warn about (`z`, `nocopy`). */
  otherModes: string[]
}

/** True for a bind source: absolute, relative (`./`, `../`, `.`) or home-relative (`~`). */
export function isPathSource(s: string): boolean {
  return s.startsWith('/') || s.startsWith('./') || s.startsWith('../') || s === '.' || s === '..' || s.startsWith('~')
}

/** A named volume key: letters, digits, `_`, `.`, `-`, starting with a letter or digit. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/

const MODES = /^(ro|rw|z|Z|nocopy|cached|delegated|consistent|r?shared|r?slave|r?private)(,(ro|rw|z|Z|nocopy|cached|delegated|consistent|r?shared|r?slave|r?private))*$/

/** Parses Compose short volume syntax: `[SOURCE:]TARGET[:MODE]` where MODE is `ro`, `rw`, `z`, `nocopy`, … comma-separated. */
export function parseVolumeShort(text: string): ShortMount | Fail {
  if (/^[A-Za-z]:\\/.test(text)) return new Fail('expected a Linux path; Windows paths are not supported')
  const parts = text.split(':')
  if (parts.length > 3 || parts.some((p) => p === '')) return new Fail('expected a volume like "data:/var/lib/data", "/srv/media:/media:ro" or "/cache"')
  let source: string | null = null
  let target: string
  let modes: string[] = []
  if (parts.length === 1) target = parts[0] ?? ''
  else if (parts.length === 2 && !MODES.test(parts[1] ?? '')) { source = parts[0] ?? null; target = parts[1] ?? '' }
  else if (parts.length === 2) { target = parts[0] ?? ''; modes = (parts[1] ?? '').split(',') }
  else { source = parts[0] ?? null; target = parts[1] ?? ''; modes = (parts[2] ?? '').split(',') }
  if (!target.startsWith('/')) return new Fail(`expected an absolute container path, not "${target}"`)
  const isBind = source !== null && isPathSource(source)
  if (source !== null && !isBind && !VOLUME_NAME.test(source)) return new Fail(`expected a volume name or a path as the source, not "${source}"`)
  let readOnly = false
  const otherModes: string[] = []
  for (const m of modes) {
    if (m === 'ro') readOnly = true
    else if (m !== 'rw') otherModes.push(m)
  }
  return { type: isBind ? 'bind' : 'volume', source, target, readOnly, otherModes }
}

const ATTRIBUTES = ['node.hostname', 'node.id', 'node.platform.os', 'node.platform.arch'] as const
const CONSTRAINT_EXPECTED = 'expected a constraint like "node.labels.zone == attic", "node.hostname != pi4" or "node.labels.disk in (ssd, nvme)"'

function unquote(v: string): string {
  const t = v.trim()
  return (t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'")) ? t.slice(1, -1) : t
}

/**
 * Parses a placement constraint: `ATTRIBUTE OP VALUE`, where ATTRIBUTE is `node.labels.KEY`,
 * `node.hostname`, `node.id`, `node.platform.os` or `node.platform.arch`, and OP is `==`, `!=`,
 * `in (a, b)` or `not in (a, b)`. The canonical form uses `in`/`notIn` with a list of values.
 */
export function parseConstraint(text: string): Constraint | Fail {
  const m = /^\s*([A-Za-z0-9_.\-/]+)\s*(==|!=|\s(?:not\s+)?in\s*(?=\())\s*(.*?)\s*$/.exec(text)
  if (m === null) return new Fail(CONSTRAINT_EXPECTED)
  const attr = m[1] ?? ''
  const rawOp = (m[2] ?? '').trim().replace(/\s+/g, ' ')
  const rest = m[3] ?? ''
  let values: string[]
  if (rawOp === '==' || rawOp === '!=') values = [unquote(rest)]
  else {
    const list = /^\((.*)\)$/.exec(rest)
    if (list === null) return new Fail(CONSTRAINT_EXPECTED)
    values = (list[1] ?? '').split(',').map(unquote)
  }
  if (values.some((v) => v === '' || /[\s,()]/.test(v))) return new Fail(`${CONSTRAINT_EXPECTED}; values are words without spaces`)
  const op = rawOp === '==' || rawOp === 'in' ? 'in' : 'notIn'
  if (attr.startsWith('node.labels.')) {
    const label = attr.slice('node.labels.'.length)
    if (!LABEL_KEY.test(label)) return new Fail(`expected a label key of letters, digits, ".", "-", "_" or "/", not "${label}"`)
    return { attribute: 'node.labels', label, op, values }
  }
  if (attr === 'node.role') return new Fail('node.role has no meaning in Skein, where all peers are equal; constrain on node.labels.KEY instead')
  if (attr.startsWith('engine.labels.')) return new Fail(`Skein has one set of host labels; write node.labels.${attr.slice('engine.labels.'.length)}`)
  const known = ATTRIBUTES.find((a) => a === attr)
  if (known === undefined) return new Fail(`expected node.labels.KEY, ${ATTRIBUTES.join(', ')} before the operator, not "${attr}"`)
  return { attribute: known, label: null, op, values }
}

/** Formats a constraint the way people write it: `node.labels.zone == attic`, `node.id in (a, b)`. */
export function formatConstraint(c: Constraint): string {
  const attr = c.attribute === 'node.labels' ? `node.labels.${c.label ?? ''}` : c.attribute
  if (c.values.length === 1) return `${attr} ${c.op === 'in' ? '==' : '!='} ${c.values[0] ?? ''}`
  return `${attr} ${c.op === 'in' ? 'in' : 'not in'} (${c.values.join(', ')})`
}
