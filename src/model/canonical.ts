// Canonical form and its bytes: two specs that mean the same thing encode to the same bytes, so
// the replication layer can compare and digest them without knowing what they contain.
import { Packr } from 'msgpackr'
import { SkeinError } from '../core/errors.ts'
import { serviceSpecSchema, type Constraint, type FileRef, type Mount, type Port, type ServiceSpec, type ServiceSpecInput } from './spec.ts'

/** The largest encoded service spec accepted by {@link decodeService}. */
export const MAX_SPEC_BYTES = 256 * 1024

// Plain msgpack: no record extension, no structure sharing, so bytes depend only on the value.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, bundleStrings: false })

/** Compares strings by code unit, as `Array.prototype.sort` does by default (locale-free). */
export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function portKey(p: Port): string {
  return [String(p.published ?? 0).padStart(5, '0'), String(p.target).padStart(5, '0'), p.protocol, p.hostIp ?? '', p.mode].join('/')
}

function constraintKey(c: Constraint): string {
  return JSON.stringify([c.attribute, c.label, c.op, c.values])
}

/** Copies a value with every map's keys in sorted order (lists keep their order). */
export function sortKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v: unknown) => sortKeys(v)) as T
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(value).sort(cmp)) {
      Object.defineProperty(out, k, { value: sortKeys((value as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true })
    }
    return out as T
  }
  return value
}

function uniqueBy<T>(list: readonly T[], key: (t: T) => string): T[] {
  const seen = new Set<string>()
  return list.filter((t) => (seen.has(key(t)) ? false : (seen.add(key(t)), true)))
}

function normalize(s: ServiceSpec): ServiceSpec {
  const byTarget = (a: Mount | FileRef, b: Mount | FileRef) => cmp(a.target, b.target)
  const constraints = uniqueBy(
    s.placement.constraints.map((c) => ({ ...c, values: [...new Set(c.values)].sort(cmp) })),
    constraintKey,
  ).sort((a, b) => cmp(constraintKey(a), constraintKey(b)))
  return sortKeys({
    ...s,
    ports: uniqueBy(s.ports, portKey).sort((a, b) => cmp(portKey(a), portKey(b))),
    mounts: [...s.mounts].sort(byTarget),
    configs: [...s.configs].sort(byTarget),
    secrets: [...s.secrets].sort(byTarget),
    placement: { ...s.placement, constraints, spread: [...new Set(s.placement.spread)] },
  })
}

/**
 * The canonical form of a service spec: every default filled in, lists whose order means nothing
 * sorted (ports, mounts, configs, secrets, constraints and their values), every map's keys sorted.
 * Idempotent. Throws a SkeinError (`invalid-spec`) if the spec is not valid — parsers report
 * errors with locations before this point, so here it means a programming error or a bad peer.
 */
export function canonicalService(input: ServiceSpecInput | ServiceSpec): ServiceSpec {
  const r = serviceSpecSchema.safeParse(input)
  if (!r.success) {
    const detail = r.error.issues.map((i) => `${i.path.join('.') || '(spec)'}: ${i.message}`).join('; ')
    throw new SkeinError('invalid-spec', `invalid service spec: ${detail}`)
  }
  return normalize(r.data)
}

/** Encodes a service spec (canonicalized first) as msgpack: equal meaning, equal bytes. */
export function encodeService(spec: ServiceSpecInput | ServiceSpec): Uint8Array {
  return new Uint8Array(packr.pack(canonicalService(spec)))
}

/**
 * Decodes bytes from {@link encodeService}, checking size and schema. Throws a SkeinError
 * (`invalid-spec`) for bytes that are too large, not msgpack, or not a valid service spec.
 */
export function decodeService(bytes: Uint8Array): ServiceSpec {
  if (bytes.byteLength > MAX_SPEC_BYTES) throw new SkeinError('invalid-spec', `encoded service spec is ${bytes.byteLength} bytes; the limit is ${MAX_SPEC_BYTES}`)
  let raw: unknown
  try {
    raw = packr.unpack(bytes)
  } catch (err) {
    throw new SkeinError('invalid-spec', 'encoded service spec is not valid msgpack', { cause: err })
  }
  return canonicalService(raw as ServiceSpecInput)
}

/** True if two specs mean the same (their canonical encodings are equal). */
export function sameService(a: ServiceSpecInput | ServiceSpec, b: ServiceSpecInput | ServiceSpec): boolean {
  const x = encodeService(a)
  const y = encodeService(b)
  return x.length === y.length && x.every((byte, i) => byte === y[i])
}
