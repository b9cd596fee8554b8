// YAML (and JSON, which is YAML) to plain values, remembering where every node was written so
// that an error about `web.deploy.replicas` can say `stack.yaml:12`.
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml'
import { makeDiagnostic, type Diagnostic, type Loc, type Path, type SourceLookup } from './errors.ts'

/** A parsed file: its plain value, where each path came from, and YAML-level problems. */
export interface SourceDoc extends SourceLookup {
  value: unknown
  /** YAML syntax errors, and structural ones (non-text keys, alias bombs). */
  errors: Diagnostic[]
  /** YAML warnings (for example an unknown tag). */
  warnings: Diagnostic[]
  /** The text as written of a plain scalar that YAML read as a number or boolean (`1.10`, `yes`). */
  scalarText(path: Path): string | undefined
}

/** Limits that keep a hostile file from costing much. */
export const SOURCE_LIMITS = {
  /** Bytes of text accepted. */
  maxBytes: 1024 * 1024,
  /** Nodes visited, counting each alias expansion again (stops "billion laughs"). */
  maxNodes: 200_000,
}

/** A key that identifies a path in the location maps. */
export function pathKey(path: Path): string {
  return path.map(String).join('\u0000')
}

/** Sets a property without invoking `__proto__` setters. */
export function setProp(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
}

/** True for a plain map value (not a list, not null). */
export function isPlainMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The raw value at a path, and whether it exists. */
export function getAt(root: unknown, path: Path): { found: boolean; value: unknown } {
  let cur: unknown = root
  for (const seg of path) {
    if (typeof seg === 'number' && Array.isArray(cur) && seg >= 0 && seg < cur.length) cur = cur[seg]
    else if (typeof seg === 'string' && isPlainMap(cur) && Object.hasOwn(cur, seg)) cur = cur[seg]
    else return { found: false, value: undefined }
  }
  return { found: true, value: cur }
}

/** Strips the code excerpt that the yaml package appends to its messages. */
function yamlMessage(msg: string): string {
  const cut = msg.indexOf(' at line ')
  return (cut >= 0 ? msg.slice(0, cut) : msg.split('\n')[0] ?? msg).trim()
}

/**
 * Parses YAML or JSON text. Merge keys (`<<: *anchor`) and aliases are expanded; values that come
 * from an anchor keep the anchor's location. Plain scalars with a leading zero (`0440`, `0123`)
 * stay text, so that file modes and environment values keep what was written.
 */
export function parseSource(text: string, file: string): SourceDoc {
  const values = new Map<string, Loc>()
  const keys = new Map<string, Loc>()
  const texts = new Map<string, string>()
  const errors: Diagnostic[] = []
  const warnings: Diagnostic[] = []
  const at = (loc: Loc, message: string, severity: 'error' | 'warning' = 'error'): Diagnostic =>
    makeDiagnostic({ severity, file, loc, path: [], message })

  let value: unknown = null
  if (text.length > SOURCE_LIMITS.maxBytes) {
    errors.push(at({ line: 0, column: 0 }, `the file is larger than ${SOURCE_LIMITS.maxBytes} bytes`))
  } else {
    const lc = new LineCounter()
    const doc = parseDocument(text, { keepSourceTokens: true, lineCounter: lc, merge: true, uniqueKeys: true, prettyErrors: true })
    const locOf = (offset: number | undefined): Loc => {
      if (offset === undefined) return { line: 0, column: 0 }
      const p = lc.linePos(offset)
      return { line: p.line, column: p.col }
    }
    for (const e of doc.errors) errors.push(at(posOf(e.linePos), `YAML syntax: ${yamlMessage(e.message)}`))
    for (const w of doc.warnings) warnings.push(at(posOf(w.linePos), `YAML: ${yamlMessage(w.message)}`, 'warning'))
    if (errors.length === 0) {
      const walker = new Walker(doc, locOf, { values, keys, texts }, (loc, path, msg) =>
        errors.push(makeDiagnostic({ severity: 'error', file, loc, path, message: msg })))
      value = walker.walk(doc.contents, [])
    }
  }

  const locate = (path: Path): Loc => {
    for (let n = path.length; n >= 0; n--) {
      const p = path.slice(0, n)
      const v = values.get(pathKey(p)) ?? keys.get(pathKey(p))
      if (v !== undefined) return v
    }
    return { line: 0, column: 0 }
  }
  const locateKey = (path: Path): Loc => keys.get(pathKey(path)) ?? locate(path)
  return {
    file, value, errors, warnings, locate, locateKey, get: (path) => getAt(value, path), scalarText: (path) => texts.get(pathKey(path)),
  }
}

function posOf(linePos: [{ line: number; col: number }] | [{ line: number; col: number }, { line: number; col: number }] | undefined): Loc {
  const p = linePos?.[0]
  return p === undefined ? { line: 0, column: 0 } : { line: p.line, column: p.col }
}

type Report = (loc: Loc, path: Path, message: string) => void

/** Walks the YAML node tree into plain values, recording locations by path. */
class Walker {
  private visited = 0
  private readonly doc: Document
  private readonly locOf: (offset: number | undefined) => Loc
  private readonly values: Map<string, Loc>
  private readonly keys: Map<string, Loc>
  private readonly texts: Map<string, string>
  private readonly report: Report
  private readonly active = new Set<unknown>()

  constructor(doc: Document, locOf: (offset: number | undefined) => Loc, maps: { values: Map<string, Loc>; keys: Map<string, Loc>; texts: Map<string, string> }, report: Report) {
    this.doc = doc
    this.locOf = locOf
    this.values = maps.values
    this.keys = maps.keys
    this.texts = maps.texts
    this.report = report
  }

  walk(node: unknown, path: Path): unknown {
    if (++this.visited > SOURCE_LIMITS.maxNodes) {
      if (this.visited === SOURCE_LIMITS.maxNodes + 1) this.report(this.loc(node), path, `the document expands to more than ${SOURCE_LIMITS.maxNodes} nodes (too many aliases?)`)
      return null
    }
    if (node === null || node === undefined) return null
    if (isAlias(node)) {
      const target = node.resolve(this.doc)
      if (target === undefined) return null
      if (this.active.has(target)) {
        this.report(this.loc(node), path, 'an alias refers to a node that contains it')
        return null
      }
      this.active.add(target)
      try { return this.walk(target, path) } finally { this.active.delete(target) }
    }
    const loc = this.loc(node)
    if (!this.values.has(pathKey(path))) this.values.set(pathKey(path), loc)
    if (isScalar(node)) {
      const src = (node as { source?: unknown }).source
      if (node.type === 'PLAIN' && typeof src === 'string' && /^[-+]?0[0-9]+$/.test(src)) return src
      if (typeof src === 'string' && (typeof node.value === 'number' || typeof node.value === 'boolean')) this.texts.set(pathKey(path), src)
      return node.value
    }
    if (isSeq(node)) return node.items.map((item, i) => this.walk(item, [...path, i]))
    if (isMap(node)) return this.walkMap(node.items, path)
    return null
  }

  private walkMap(items: readonly { key: unknown; value: unknown }[], path: Path): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    const merges: unknown[] = []
    for (const pair of items) {
      if (isMergeKey(pair.key)) { merges.push(pair.value); continue }
      const key = this.keyText(pair.key, path)
      if (key === undefined) continue
      const kp = [...path, key]
      if (!this.keys.has(pathKey(kp))) this.keys.set(pathKey(kp), this.loc(pair.key))
      if (pair.value === null || pair.value === undefined) this.values.set(pathKey(kp), this.loc(pair.key))
      setProp(out, key, this.walk(pair.value, kp))
    }
    // `<<: *a` or `<<: [*a, *b]`: explicit keys win, then earlier merged maps over later ones.
    for (const m of merges) {
      const sources = isSeq(m) ? m.items : [m]
      for (const s of sources) {
        const merged = this.walk(s, path)
        if (merged === null) continue
        if (typeof merged !== 'object' || Array.isArray(merged)) {
          this.report(this.loc(s), path, 'a merge key (<<) needs a map or a list of maps')
          continue
        }
        for (const [k, v] of Object.entries(merged)) if (!Object.hasOwn(out, k)) setProp(out, k, v)
      }
    }
    return out
  }

  private keyText(key: unknown, path: Path): string | undefined {
    const k = isAlias(key) ? key.resolve(this.doc) : key
    if (isScalar(k) && (typeof k.value === 'string' || typeof k.value === 'number' || typeof k.value === 'boolean')) {
      const src = (k as { source?: unknown }).source
      return k.type === 'PLAIN' && typeof src === 'string' ? src : String(k.value)
    }
    this.report(this.loc(key), path, 'map keys must be plain text')
    return undefined
  }

  private loc(node: unknown): Loc {
    const range = (node as YamlNode | undefined)?.range
    return this.locOf(range?.[0])
  }
}

function isMergeKey(key: unknown): boolean {
  return isScalar(key) && (typeof key.value === 'symbol' || (key.type === 'PLAIN' && key.value === '<<'))
}

/**
 * Replaces the numbers and booleans directly inside the map or list at `path` with their text as
 * written, so that `VERSION: 1.10` stays "1.10" rather than becoming 1.1. Used for environment
 * values, labels and driver options, which are text.
 */
export function keepWrittenText(doc: SourceDoc, root: unknown, path: Path): void {
  const { found, value } = getAt(root, path)
  if (!found) return
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      const t = doc.scalarText([...path, i])
      if (t !== undefined && (typeof v === 'number' || typeof v === 'boolean')) value[i] = t
    })
  } else if (isPlainMap(value)) {
    for (const [k, v] of Object.entries(value)) {
      const t = doc.scalarText([...path, k])
      if (t !== undefined && (typeof v === 'number' || typeof v === 'boolean')) setProp(value, k, t)
    }
  }
}
