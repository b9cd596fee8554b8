// Diagnostics for spec files: every error and warning names the file, the line, the path and the
// value at fault, and says what is allowed. Parsing collects all of them; nothing is partial.
import type { z } from 'zod'

/** A path into a parsed document: map keys and list indexes. */
export type Path = readonly (string | number)[]

/** A position in a source file, 1-based. Line 0 means "unknown" (for example, a spec built in code). */
export interface Loc {
  line: number
  column: number
}

/** One error or warning about a spec file. */
export interface Diagnostic {
  severity: 'error' | 'warning'
  /** The file name as given to the parser (`stack.yaml`, or `<input>`). */
  file: string
  line: number
  column: number
  /** Where in the document, as written: `web.deploy.replicas`, `web.labels["traefik.enable"]`. */
  path: string
  /** What is wrong, including what is allowed: `expected a whole number ≥ 0, got "three"`. */
  message: string
  /** What is allowed, when the diagnostic is about a value (`a whole number ≥ 0`). */
  expected?: string
  /** The value at fault; absent when the value is missing. */
  value?: unknown
  /** The whole diagnostic on one line, ready to print. */
  text: string
}

/**
 * Formats a path for people. A leading `services` segment is dropped (`web.image`, not
 * `services.web.image`); keys that are not plain words are quoted (`labels["traefik.enable"]`).
 */
export function formatPath(path: Path): string {
  const parts = path[0] === 'services' && path.length > 1 ? path.slice(1) : path
  let out = ''
  for (const seg of parts) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

/** A value as it appears in a message: strings quoted, long values cut. */
export function showValue(value: unknown): string {
  let s: string
  if (value === undefined) s = 'nothing'
  else if (typeof value === 'string') s = JSON.stringify(value)
  else if (Array.isArray(value)) s = value.length === 0 ? 'an empty list' : JSON.stringify(value)
  else if (value !== null && typeof value === 'object') s = Object.keys(value).length === 0 ? 'an empty map' : `a map with ${Object.keys(value).join(', ')}`
  else s = String(value)
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}

/** Where a diagnostic points: `stack.yaml:12`, or just the file when the line is unknown. */
export function formatWhere(file: string, loc: Loc): string {
  return loc.line > 0 ? `${file}:${loc.line}` : file
}

/** Options for {@link makeDiagnostic}. */
export interface DiagnosticInit {
  severity: 'error' | 'warning'
  file: string
  loc: Loc
  path: Path
  message: string
  expected?: string
  value?: unknown
  hasValue?: boolean
}

/**
 * Builds a diagnostic and its one-line text. Errors read `path: message (file:line)`; warnings
 * read `path (file:line) message`, so that `web.build (stack.yml:7) is ignored: ...` reads as a
 * sentence.
 */
export function makeDiagnostic(init: DiagnosticInit): Diagnostic {
  const path = formatPath(init.path)
  const where = formatWhere(init.file, init.loc)
  let text: string
  if (init.severity === 'error') text = path === '' ? `${where}: ${init.message}` : `${path}: ${init.message} (${where})`
  else text = path === '' ? `${where}: ${init.message}` : `${path} (${where}) ${init.message}`
  const d: Diagnostic = {
    severity: init.severity, file: init.file, line: init.loc.line, column: init.loc.column, path, message: init.message, text,
  }
  if (init.expected !== undefined) d.expected = init.expected
  if (init.hasValue === true) d.value = init.value
  return d
}

/** Sorts diagnostics by line, then column, then text, so that output is stable. */
export function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort((a, b) => a.line - b.line || a.column - b.column || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0))
}

/** Edit distance between two short strings, counting a swap of neighbours as one edit. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  const at = (i: number, j: number) => d[i]?.[j] ?? Infinity
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1)
      const row = d[i]
      if (row !== undefined) row[j] = v
    }
  }
  return at(a.length, b.length)
}

/** `working_dir` → `workingDir`. */
function camel(s: string): string {
  return s.replace(/[_-]([a-z])/g, (_, c: string) => c.toUpperCase())
}

/**
 * The closest allowed key to an unknown one, if it is close enough to be a likely slip:
 * the same key in camelCase or in another case, a known synonym, or a small edit distance.
 */
export function suggestKey(key: string, allowed: readonly string[], synonyms: Readonly<Record<string, string>> = {}): string | undefined {
  const syn = synonyms[key]
  if (syn !== undefined) return syn
  const c = camel(key)
  const lower = key.toLowerCase()
  for (const a of allowed) if (a === c || a.toLowerCase() === lower || a.toLowerCase() === c.toLowerCase()) return a
  let best: string | undefined
  let bestD = Infinity
  for (const a of allowed) {
    const d = editDistance(lower, a.toLowerCase())
    if (d < bestD) { bestD = d; best = a }
  }
  const limit = Math.max(1, Math.floor(key.length / 3))
  return bestD <= limit ? best : undefined
}

/** The message for an unknown key, with a suggestion when one is close. */
export function unknownKeyMessage(key: string, allowed: readonly string[], synonyms: Readonly<Record<string, string>> = {}): string {
  const s = suggestKey(key, allowed, synonyms)
  if (s !== undefined && s.includes(' ')) return `unknown key; ${s}`
  if (s !== undefined) return `unknown key, did you mean "${s}"?`
  if (allowed.length > 12) return 'unknown key'
  return `unknown key; allowed here: ${[...allowed].sort().join(', ')}`
}

/** A zod issue as this module needs it (zod's own type is a large union). */
type Issue = z.core.$ZodIssue

/** Looks up locations and raw values in the parsed document, for {@link issuesToDiagnostics}. */
export interface SourceLookup {
  file: string
  /** The location of the value at `path`, or of the nearest enclosing node. */
  locate(path: Path): Loc
  /** The location of the key that ends `path` (for unknown keys). */
  locateKey(path: Path): Loc
  /** The raw value at `path`, and whether there is one. */
  get(path: Path): { found: boolean; value: unknown }
}

/**
 * Turns zod issues into diagnostics. Messages from this package's schemas say what is allowed
 * (`expected a whole number ≥ 0`); this adds the value at fault (`, got "three"`) and the location.
 * `unrecognized_keys` issues become one diagnostic per key, at the key's line.
 */
export function issuesToDiagnostics(issues: readonly Issue[], src: SourceLookup, base: Path = []): Diagnostic[] {
  const out: Diagnostic[] = []
  for (const issue of issues) {
    const path: Path = [...base, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))]
    if (issue.code === 'unrecognized_keys') {
      const lines = issue.message.split('\n')
      issue.keys.forEach((key, i) => {
        const kp = [...path, key]
        const msg = lines.length === issue.keys.length ? (lines[i] ?? 'unknown key') : 'unknown key'
        out.push(makeDiagnostic({ severity: 'error', file: src.file, loc: src.locateKey(kp), path: kp, message: msg }))
      })
      continue
    }
    if (issue.code === 'invalid_union' && issue.errors.length > 0 && issue.message === 'Invalid input') {
      // A union without its own message: report the branch that got furthest.
      const best = [...issue.errors].sort((a, b) => depth(b) - depth(a))[0] ?? []
      out.push(...issuesToDiagnostics(best, src, path))
      continue
    }
    const { found, value } = src.get(path)
    const raw = issue.message
    const expected = raw.startsWith('expected ') ? raw.slice('expected '.length) : undefined
    let message: string
    if (!found) message = expected !== undefined ? `is required, expected ${expected}` : raw
    else if (expected !== undefined && !/\b(got|not)\b/.test(raw)) message = `${raw}, got ${showValue(value)}`
    else message = raw
    // A missing value is reported where its parent's key is written.
    const loc = found || path.length === 0 ? src.locate(path) : src.locateKey(path.slice(0, -1))
    const init: DiagnosticInit = { severity: 'error', file: src.file, loc, path, message, value, hasValue: found }
    if (expected !== undefined) init.expected = expected
    out.push(makeDiagnostic(init))
  }
  return out
}

function depth(issues: readonly Issue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length))
}
