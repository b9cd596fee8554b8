// Compose variables: `${VAR}` interpolation in values, and env files (`KEY=value` lines).
// Both use the variables the client passes in; nothing here reads the process environment.
import type { Path } from './errors.ts'
import { isPlainMap, setProp } from './source.ts'

/** Variables by name; undefined means unset. */
export type Vars = Readonly<Record<string, string | undefined>>

/** Receives interpolation problems. */
export interface VarReport {
  /** A variable used without a value or default: it becomes blank. */
  unset(path: Path, name: string): void
  /** A `${VAR:?message}` whose variable is unset or empty, or bad syntax. */
  error(path: Path, message: string): void
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y

class Interp {
  private readonly s: string
  private i = 0
  private readonly vars: Vars
  readonly unset: string[] = []
  error: string | undefined

  constructor(s: string, vars: Vars) {
    this.s = s
    this.vars = vars
  }

  /** Reads up to the end, or up to an unmatched `}` when nested. */
  run(nested: boolean): string {
    let out = ''
    while (this.i < this.s.length) {
      const c = this.s[this.i] ?? ''
      if (nested && c === '}') return out
      if (c !== '$') { out += c; this.i++; continue }
      const next = this.s[this.i + 1]
      if (next === '$') { out += '$'; this.i += 2; continue }
      if (next === '{') { this.i += 2; out += this.braced(); if (this.error !== undefined) return out; continue }
      NAME.lastIndex = this.i + 1
      const m = NAME.exec(this.s)
      if (m === null) { out += '$'; this.i++; continue }
      this.i = NAME.lastIndex
      out += this.lookup(m[0])
    }
    if (nested) this.error = 'an unclosed "${" in an interpolation'
    return out
  }

  private lookup(name: string): string {
    const v = this.vars[name]
    if (v === undefined) { this.unset.push(name); return '' }
    return v
  }

  private braced(): string {
    NAME.lastIndex = this.i
    const m = NAME.exec(this.s)
    if (m === null) { this.error = `an invalid interpolation "${this.s}": expected a variable name after "\${"`; return '' }
    const name = m[0]
    this.i = NAME.lastIndex
    const rest = this.s.slice(this.i)
    const op = ['}', ':-', ':?', ':+', '-', '?', '+'].find((o) => rest.startsWith(o))
    if (op === undefined) { this.error = `an invalid interpolation "${this.s}": expected }, :-, -, :?, ?, :+ or + after the variable name`; return '' }
    this.i += op.length
    if (op === '}') return this.lookup(name)
    const word = this.run(true)
    if (this.error !== undefined) return ''
    this.i++ // the closing }
    const v = this.vars[name]
    const set = v !== undefined && (op.startsWith(':') ? v !== '' : true)
    if (op.endsWith('-')) return set ? (v ?? '') : word
    if (op.endsWith('+')) return set ? word : ''
    if (!set) this.error = `required variable ${name} is ${v === undefined ? 'not set' : 'empty'}${word === '' ? '' : `: ${word}`}`
    return v ?? ''
  }
}

/**
 * Expands `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`,
 * `${VAR:+alt}`, `${VAR+alt}` (nested in defaults too) and `$$` → `$`, as Compose does.
 */
export function interpolate(s: string, vars: Vars): { value: string; unset: string[]; error?: string } {
  const it = new Interp(s, vars)
  const value = it.run(false)
  return it.error === undefined ? { value, unset: it.unset } : { value, unset: it.unset, error: it.error }
}

/** Interpolates every text value in the tree, in place (keys stay as written). */
export function interpolateTree(root: unknown, vars: Vars, report: VarReport): void {
  const visit = (value: unknown, path: Path, set: (v: unknown) => void): void => {
    if (typeof value === 'string') {
      if (!value.includes('$')) return
      const r = interpolate(value, vars)
      if (r.error !== undefined) report.error(path, r.error)
      for (const name of r.unset) report.unset(path, name)
      set(r.value)
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => visit(v, [...path, i], (nv) => { value[i] = nv }))
    } else if (isPlainMap(value)) {
      for (const [k, v] of Object.entries(value)) visit(v, [...path, k], (nv) => setProp(value, k, nv))
    }
  }
  visit(root, [], () => undefined)
}

/**
 * Parses an env file: `KEY=value` lines, `export KEY=value`, `#` comments, blank lines, values in
 * single quotes (literal) or double quotes (with \n, \t, \" and \\ escapes). A line with only
 * `KEY` takes the value from `vars` (and is left out when unset). Returns the entries in order,
 * or the 1-based number of the first line that is not an entry.
 */
export function parseEnvFile(text: string, vars: Vars): { entries: [string, string][] } | { badLine: number } {
  const entries: [string, string][] = []
  const lines = text.split(/\r?\n/)
  for (let n = 0; n < lines.length; n++) {
    const line = (lines[n] ?? '').trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:=\s*(.*))?$/.exec(line)
    if (m === null) return { badLine: n + 1 }
    const key = m[1] ?? ''
    const raw = m[2]
    if (raw === undefined) {
      const v = vars[key]
      if (v !== undefined) entries.push([key, v])
      continue
    }
    let value: string
    const q = raw[0]
    if ((q === '"' || q === "'") && raw.indexOf(q, 1) > 0) {
      const end = q === '"' ? closingDouble(raw) : raw.indexOf(q, 1)
      const inner = raw.slice(1, end)
      value = q === "'" ? inner : inner.replace(/\\([nt"\\])/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c))
    } else {
      value = raw.replace(/\s+#.*$/, '').trim()
    }
    entries.push([key, value])
  }
  return { entries }
}

function closingDouble(raw: string): number {
  for (let i = 1; i < raw.length; i++) {
    if (raw[i] === '\\') { i++; continue }
    if (raw[i] === '"') return i
  }
  return raw.length
}
