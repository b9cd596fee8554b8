// Leaf schemas for values specific to service specs (images, health checks, host-loss policy),
// shared by both formats.
import { z } from 'zod'
import { bool, leaf, strict, wholeNumber, type Leniency } from './fields.ts'
import { Fail, parsePortShort } from './syntax.ts'
import { parseDuration } from './units.ts'
import { DNS_LABEL, IMAGE_REF, LABEL_KEY, type OnHostLoss, type Port } from './spec.ts'

/** An image reference. */
export const image = leaf('an image reference like "nginx:1.27" or "ghcr.io/org/app:v2"', (v) =>
  typeof v === 'string' && IMAGE_REF.test(v) ? v : undefined)

/** A DNS label (service and stack names). */
export const dnsLabel = leaf('a name of lowercase letters, digits and "-" (a DNS label, at most 63)', (v) =>
  typeof v === 'string' && DNS_LABEL.test(v) ? v : undefined)

/** A host label key, with or without the `node.labels.` prefix (for spread). */
export const spreadLabel = leaf('a host label like "zone" or "node.labels.zone"', (v) => {
  if (typeof v !== 'string') return undefined
  const key = v.startsWith('node.labels.') ? v.slice('node.labels.'.length) : v
  return LABEL_KEY.test(key) ? key : undefined
})

/** A numeric user or group id as text. */
export function numericId(opts: Leniency) {
  return leaf('a numeric id like "1000"', (v) => {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v)
    if (typeof v === 'string' && /^\d+$/.test(v)) return v
    return opts.lenient && typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? v.trim() : undefined
  })
}

/** Expected HTTP status: a code (`200`), a class (`"2xx"`) or a range (`"200-204"`) → [min, max]. */
export const httpStatus = leaf('a status like 200, "2xx" or "200-299"', (v): [number, number] | undefined => {
  let range: [number, number] | undefined
  if (typeof v === 'number') range = [v, v]
  else if (typeof v === 'string') {
    const cls = /^([1-5])xx$/i.exec(v.trim())
    const rng = /^(\d{3})(?:\s*-\s*(\d{3}))?$/.exec(v.trim())
    if (cls !== null) range = [Number(cls[1]) * 100, Number(cls[1]) * 100 + 99]
    else if (rng !== null) range = [Number(rng[1]), Number(rng[2] ?? rng[1])]
  }
  if (range === undefined) return undefined
  const [a, b] = range
  return Number.isInteger(a) && Number.isInteger(b) && a >= 100 && b <= 599 && a <= b ? range : undefined
})

/** `replace`, or `wait DURATION` (wait that long for the host to return, then replace). */
export const onHostLoss = leaf('"replace" or "wait <duration>" like "wait 5m"', (v): OnHostLoss | undefined => {
  if (v === 'replace') return { action: 'replace' }
  if (typeof v !== 'string') return undefined
  const m = /^wait\s+(\S+)$/.exec(v.trim())
  const ms = m === null ? undefined : parseDuration(m[1] ?? '')
  return ms === undefined || ms === 0 ? undefined : { action: 'wait', afterMs: ms }
})

/** The Skein-only service fields, as written in a native service or a Compose `x-skein` block. */
export function skeinFields(opts: Leniency) {
  return { onHostLoss: onHostLoss.optional(), rebalance: bool(opts).optional() }
}

/** A host IP address to bind a port to. */
export const hostIp = leaf('an IP address like "127.0.0.1"', (v) =>
  typeof v === 'string' && (/^(\d{1,3}\.){3}\d{1,3}$/.test(v) || /^[0-9a-fA-F:.]+$/.test(v) && v.includes(':')) ? v : undefined)

/**
 * Ports from short syntax: ranges expand; an address (`127.0.0.1:8080:80`) means host mode,
 * since only a host-mode port binds on a given address.
 */
export const shortPorts = leaf('a port like "8080:80", "127.0.0.1:8080:80/udp" or 80', (v): Port[] | Fail | undefined => {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined
  const r = parsePortShort(v)
  if (r instanceof Fail) return r
  return r.map((p) => ({ ...p, mode: p.hostIp === null ? 'ingress' : 'host' }))
})

/** The long form of a port (`hostIp`/`host_ip` depending on the format). */
export function longPort(opts: Leniency & { hostIpKey: 'hostIp' | 'host_ip'; extra?: z.ZodRawShape }) {
  const portNo = wholeNumber(1, { ...opts, max: 65535, what: 'a port number 1–65535' })
  return strict({
    target: portNo,
    published: portNo.optional(),
    protocol: leaf('tcp or udp', (v) => (v === 'tcp' || v === 'udp' ? v : undefined)).optional(),
    mode: leaf('ingress or host', (v) => (v === 'ingress' || v === 'host' ? v : undefined)).optional(),
    [opts.hostIpKey]: hostIp.optional(),
    ...opts.extra,
  }).transform((raw, ctx): Port[] => {
    type Long = { target: number; published?: number; protocol?: 'tcp' | 'udp'; mode?: 'ingress' | 'host' } & Record<string, unknown>
    const p = raw as Long
    const ip = p[opts.hostIpKey]
    const address = typeof ip === 'string' ? ip : null
    if (address !== null && p.mode === 'ingress') {
      ctx.addIssue({ code: 'custom', path: ['mode'], message: 'a port bound to an address needs mode "host"' })
      return z.NEVER
    }
    return [{ target: p.target, published: p.published ?? null, protocol: p.protocol ?? 'tcp', mode: p.mode ?? (address === null ? 'ingress' : 'host'), hostIp: address }]
  })
}
