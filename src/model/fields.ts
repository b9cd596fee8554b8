// Zod building blocks shared by the native and Compose schemas. Each one says what it expects in
// its message ("expected a duration like ..."), which errors.ts completes with the value at fault.
import { z } from 'zod'
import { parseCpu, parseDuration, parseFileMode, parseMemory } from './units.ts'
import { Fail, parseConstraint, parsePortShort, shellWords, type ShortPort } from './syntax.ts'
import { unknownKeyMessage } from './errors.ts'
import { isPlainMap } from './source.ts'
import type { Constraint } from './spec.ts'

/** Strictness: the native format takes values as typed; Compose also takes numbers and booleans written as text. */
export interface Leniency {
  lenient: boolean
}

/** A schema from a parse function: undefined means "not what we expect", a Fail gives a specific message. */
export function leaf<T>(expected: string, parse: (v: unknown) => T | Fail | undefined) {
  return z.unknown().transform((v, ctx): T => {
    const r = parse(v)
    if (r === undefined || r instanceof Fail) {
      ctx.addIssue({ code: 'custom', message: r instanceof Fail ? r.message : `expected ${expected}`, input: v })
      return z.NEVER
    }
    return r
  })
}

/** Runs `schema` on the value and copies its issues, with their paths, into the outer parse. */
export function delegate<S extends z.ZodType>(schema: S, v: unknown, ctx: z.RefinementCtx): z.output<S> | typeof z.NEVER {
  const r = schema.safeParse(v)
  if (r.success) return r.data
  for (const issue of r.error.issues) ctx.addIssue({ ...issue } as Parameters<typeof ctx.addIssue>[0])
  return z.NEVER
}

/**
 * A strict object: unknown keys are errors, one per key at the key's line, with a "did you mean"
 * suggestion. `synonyms` maps keys people carry over from elsewhere to the name used here.
 */
export function strict<S extends z.ZodRawShape>(shape: S, synonyms: Readonly<Record<string, string>> = {}) {
  const allowed = Object.keys(shape)
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') return iss.keys.map((k) => unknownKeyMessage(k, allowed, synonyms)).join('\n')
      if (iss.code === 'invalid_type') return 'expected a map'
      return undefined
    },
  })
}

/** Text. Lenient: numbers and booleans are taken as their text. */
export function text(what = 'text', opts: Leniency = { lenient: false }) {
  return leaf(what, (v) => {
    if (typeof v === 'string') return v
    if (opts.lenient && (typeof v === 'number' || typeof v === 'boolean')) return String(v)
    return undefined
  })
}

/** Non-empty text. */
export function nonEmpty(what = 'non-empty text', opts: Leniency = { lenient: false }) {
  return leaf(what, (v) => {
    const s = typeof v === 'string' ? v : opts.lenient && typeof v === 'number' ? String(v) : undefined
    return s === undefined || s.trim() === '' ? undefined : s
  })
}

/** A whole number ≥ min (and ≤ max). Lenient: also digits as text. */
export function wholeNumber(min: number, opts: Leniency & { max?: number; what?: string } = { lenient: false }) {
  const what = opts.what ?? (opts.max === undefined ? `a whole number ≥ ${min}` : `a whole number ${min}–${opts.max}`)
  return leaf(what, (v) => {
    const n = typeof v === 'number' ? v : opts.lenient && typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN
    return Number.isSafeInteger(n) && n >= min && (opts.max === undefined || n <= opts.max) ? n : undefined
  })
}

/** A number in [0, 1]. */
export function ratio(opts: Leniency) {
  return leaf('a ratio from 0 to 1', (v) => {
    const n = typeof v === 'number' ? v : opts.lenient && typeof v === 'string' && /^\s*\d*\.?\d+\s*$/.test(v) ? Number(v) : NaN
    return n >= 0 && n <= 1 ? n : undefined
  })
}

/** true or false. Lenient: also "true"/"false". */
export function bool(opts: Leniency = { lenient: false }) {
  return leaf('true or false', (v) => {
    if (typeof v === 'boolean') return v
    if (opts.lenient && (v === 'true' || v === 'false')) return v === 'true'
    return undefined
  })
}

/** One of a fixed set of words. */
export function oneOf<const T extends string>(values: readonly T[]) {
  const what = values.length === 2 ? `${values[0]} or ${values[1]}` : `one of ${values.join(', ')}`
  return leaf(what, (v) => values.find((x) => x === v))
}

/** A duration (`10s`, `1m30s`, `250ms`, or 0) → milliseconds. */
export const duration = leaf('a duration like "10s" or "1m30s"', (v) => (v === 0 ? 0 : typeof v === 'string' ? parseDuration(v) : undefined))
/** A memory size (`256M`, `1G`, bytes) → bytes. */
export const memory = leaf('a size like "256M" or "1G"', parseMemory)
/** CPU cores (`0.5`, `"1.5"`, `"500m"`) → thousandths of a core. */
export const cpu = leaf('a number of CPU cores like 0.5 (at most 3 decimals)', parseCpu)
/** A file mode: a number, or octal text such as "0440". */
export const fileMode = leaf('a file mode like "0440"', parseFileMode)
/** An absolute path. */
export const absolutePath = leaf('an absolute path', (v) => (typeof v === 'string' && v.startsWith('/') ? v : undefined))
/** A port number. */
export function portNumber(opts: Leniency) {
  return wholeNumber(1, { ...opts, max: 65535, what: 'a port number 1–65535' })
}

/** A command: a list of words, or text split into words as a shell would (without running a shell). */
export function command(opts: Leniency) {
  return leaf('a command: a list of words, or text', (v) => {
    if (typeof v === 'string') return shellWords(v)
    if (!Array.isArray(v)) return undefined
    const out: string[] = []
    for (const w of v) {
      if (typeof w === 'string') out.push(w)
      else if (opts.lenient && (typeof w === 'number' || typeof w === 'boolean')) out.push(String(w))
      else return new Fail(`expected a command: a list of words, and ${JSON.stringify(w)} is not a word`)
    }
    return out
  })
}

/** Short port syntax (`"8080:80/udp"`, `80`) → one port per number in a range. */
export const portShort = leaf('a port like "8080:80"', (v): ShortPort[] | Fail | undefined =>
  typeof v === 'string' || typeof v === 'number' ? parsePortShort(v) : undefined)

/** A placement constraint in text form → structured. */
export const constraint = leaf('a constraint like "node.labels.zone == attic"', (v): Constraint | Fail | undefined =>
  typeof v === 'string' ? parseConstraint(v) : undefined)

const ENV_KEY = /^[^=\s\0]+$/

/**
 * A map of text (`{K: V}`) or a list of `K=V` entries. `unset` allows keys without a value
 * (`K:` or `- K`), which come out as null for the caller to resolve; otherwise they are errors.
 */
export function keyValues(what: string, opts: Leniency & { unset: boolean; listWithoutEquals?: string }) {
  return z.unknown().transform((v, ctx): Record<string, string | null> => {
    const out: Record<string, string | null> = {}
    const put = (k: string, val: string | null, path: (string | number)[]) => {
      if (!ENV_KEY.test(k)) ctx.addIssue({ code: 'custom', path, message: `expected ${what} names without "=" or spaces`, input: k })
      else if (k === '__proto__') ctx.addIssue({ code: 'custom', path, message: `the ${what} name __proto__ is not allowed` })
      else Object.defineProperty(out, k, { value: val, enumerable: true, writable: true, configurable: true })
    }
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        if (typeof item !== 'string') { ctx.addIssue({ code: 'custom', path: [i], message: `expected ${what} text "KEY=value"`, input: item }); return }
        const eq = item.indexOf('=')
        if (eq >= 0) put(item.slice(0, eq), item.slice(eq + 1), [i])
        else if (opts.listWithoutEquals !== undefined) put(item, opts.listWithoutEquals, [i])
        else if (opts.unset) put(item, null, [i])
        else ctx.addIssue({ code: 'custom', path: [i], message: `expected ${what} text "KEY=value"`, input: item })
      })
    } else if (isPlainMap(v)) {
      for (const [k, val] of Object.entries(v)) {
        if (typeof val === 'string') put(k, val, [k])
        else if (typeof val === 'number' || typeof val === 'boolean') put(k, String(val), [k])
        else if (val === null && opts.unset) put(k, null, [k])
        else ctx.addIssue({ code: 'custom', path: [k], message: `expected text as the ${what} value`, input: val })
      }
    } else {
      ctx.addIssue({ code: 'custom', message: `expected a map of ${what}s or a list of "KEY=value"`, input: v })
      return z.NEVER
    }
    return out
  })
}

/** A map of text to text (driver options, labels written as a map only). */
export const textMap = leaf('a map of text', (v) => {
  if (!isPlainMap(v)) return undefined
  const out: Record<string, string> = {}
  for (const [k, val] of Object.entries(v)) {
    if (k === '__proto__') return new Fail('expected a map of text; "__proto__" is not allowed as a key')
    if (typeof val === 'string' || typeof val === 'number' || typeof val === 'boolean') Object.defineProperty(out, k, { value: String(val), enumerable: true, writable: true, configurable: true })
    else return new Fail(`expected a map of text; "${k}" is not text`)
  }
  return out
})

/** A value that is either a single item or a list of them; comes out as a list. */
export function listOf<S extends z.ZodType>(item: S) {
  return z.unknown().transform((v, ctx): z.output<S>[] => {
    if (Array.isArray(v)) return delegate(z.array(item), v, ctx)
    const one = delegate(item, v, ctx)
    return [one]
  })
}

/** A map goes to `map`, anything else to `other` (short syntax). */
export function mapOr<M extends z.ZodType, O extends z.ZodType>(map: M, other: O) {
  return z.unknown().transform((v, ctx): z.output<M> | z.output<O> => (isPlainMap(v) ? delegate(map, v, ctx) : delegate(other, v, ctx)))
}

/** A list of items (a single item is not accepted: the native format is explicit). */
export function list<S extends z.ZodType>(item: S, what = 'a list') {
  return z.array(item, { error: `expected ${what}` })
}

/** A map from names to items, validated per entry. */
export function mapOf<S extends z.ZodType>(item: S, what = 'a map') {
  return z.record(z.string(), item, { error: `expected ${what}` })
}
