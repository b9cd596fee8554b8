import fc from 'fast-check'
import { pack } from 'msgpackr'
import { stringify } from 'yaml'
import { describe, expect, it } from 'vitest'
import { canonicalService, decodeService, encodeService, MAX_SPEC_BYTES, sameService } from '../../src/model/canonical.ts'
import { parseStackText } from '../../src/model/stack.ts'
import type { ServiceSpec, ServiceSpecInput } from '../../src/model/spec.ts'
import { formatDuration } from '../../src/model/units.ts'

// A service as meaning, rendered into the native format in two different notations.
interface Model {
  image: string
  replicas: number | null
  env: [string, string][]
  ports: { target: number; published: number; protocol: 'tcp' | 'udp' }[]
  mounts: ({ kind: 'bind'; source: string; target: string; ro: boolean } | { kind: 'named'; name: string; target: string } | { kind: 'tmpfs'; target: string; mib: number })[]
  resources: { resCpu: number; extraCpu: number; resMib: number; extraMib: number } | null
  constraints: { label: string; op: 'in' | 'notIn'; values: string[] }[]
  spread: string[]
  maxPerNode: number | null
  health: { kind: 'exec' | 'http' | 'tcp'; port: number; intervalS: number; retries: number } | null
  restartDelayS: number
  update: { parallelism: number; delayS: number; order: 'stop-first' | 'start-first'; ratio: number }
  waitS: number | null
  rebalance: boolean
  labels: [string, string][]
}

const word = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/)
const path = fc.array(word, { minLength: 1, maxLength: 3 }).map((p) => `/${p.join('/')}`)
const model: fc.Arbitrary<Model> = fc.record({
  image: fc.constantFrom('nginx:1.27', 'postgres:16-alpine', 'ghcr.io/acme/app:v2', 'redis'),
  replicas: fc.option(fc.integer({ min: 0, max: 20 }), { nil: null }),
  env: fc.uniqueArray(fc.tuple(fc.stringMatching(/^[A-Z][A-Z0-9_]{0,8}$/), fc.string({ maxLength: 12 })), { selector: (e) => e[0], maxLength: 5 }),
  ports: fc.uniqueArray(fc.record({ target: fc.integer({ min: 1, max: 65535 }), published: fc.integer({ min: 1, max: 65535 }), protocol: fc.constantFrom('tcp' as const, 'udp' as const) }), { selector: (p) => `${p.published}/${p.protocol}`, maxLength: 4 }),
  mounts: fc.uniqueArray(fc.oneof(
    fc.record({ kind: fc.constant('bind' as const), source: path, target: path, ro: fc.boolean() }),
    fc.record({ kind: fc.constant('named' as const), name: word, target: path }),
    fc.record({ kind: fc.constant('tmpfs' as const), target: path, mib: fc.integer({ min: 1, max: 4096 }) }),
  ), { selector: (m) => m.target, maxLength: 4 }),
  resources: fc.option(fc.record({ resCpu: fc.integer({ min: 1, max: 4000 }), extraCpu: fc.integer({ min: 0, max: 4000 }), resMib: fc.integer({ min: 1, max: 8192 }), extraMib: fc.integer({ min: 0, max: 8192 }) }), { nil: null }),
  constraints: fc.uniqueArray(fc.record({ label: word, op: fc.constantFrom('in' as const, 'notIn' as const), values: fc.uniqueArray(word, { minLength: 1, maxLength: 3 }) }), { selector: (c) => c.label, maxLength: 3 }),
  spread: fc.uniqueArray(word, { maxLength: 2 }),
  maxPerNode: fc.option(fc.integer({ min: 1, max: 5 }), { nil: null }),
  health: fc.option(fc.record({ kind: fc.constantFrom('exec' as const, 'http' as const, 'tcp' as const), port: fc.integer({ min: 1, max: 65535 }), intervalS: fc.integer({ min: 1, max: 600 }), retries: fc.integer({ min: 0, max: 10 }) }), { nil: null }),
  restartDelayS: fc.integer({ min: 0, max: 3600 }),
  update: fc.record({ parallelism: fc.integer({ min: 0, max: 10 }), delayS: fc.integer({ min: 0, max: 600 }), order: fc.constantFrom('stop-first' as const, 'start-first' as const), ratio: fc.constantFrom(0, 0.1, 0.25, 0.5, 1) }),
  waitS: fc.option(fc.integer({ min: 1, max: 86_400 }), { nil: null }),
  rebalance: fc.boolean(),
  labels: fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9.]{0,10}[a-z0-9]$/), word), { selector: (e) => e[0], maxLength: 4 }),
})

/** Native YAML for the model: variant 0 uses short forms, variant 1 long forms, other units and reversed orders. */
function render(m: Model, variant: 0 | 1): string {
  const alt = variant === 1
  const order = <T>(list: T[]) => (alt ? [...list].reverse() : list)
  const secs = (s: number) => (alt ? formatDuration(s * 1000) : `${s}s`)
  const mem = (mib: number) => (alt ? mib * 1024 * 1024 : `${mib}M`)
  const cpu = (milli: number) => (alt ? `${milli}m` : milli / 1000)
  const svc: Record<string, unknown> = { image: m.image }
  if (m.replicas === null) svc['mode'] = 'global'
  else svc['replicas'] = m.replicas
  svc['env'] = alt ? order(m.env).map(([k, v]) => `${k}=${v}`) : Object.fromEntries(m.env)
  svc['labels'] = Object.fromEntries(order(m.labels))
  svc['ports'] = order(m.ports).map((p) => (alt ? { published: p.published, target: p.target, protocol: p.protocol } : `${p.published}:${p.target}/${p.protocol}`))
  svc['volumes'] = order(m.mounts).map((v) => {
    if (v.kind === 'tmpfs') return { type: 'tmpfs', target: v.target, size: mem(v.mib) }
    if (v.kind === 'bind') return alt ? { type: 'bind', source: v.source, target: v.target, readOnly: v.ro } : `${v.source}:${v.target}${v.ro ? ':ro' : ''}`
    return alt ? { source: v.name, target: v.target } : `${v.name}:${v.target}`
  })
  if (m.resources !== null) {
    const r = m.resources
    svc['resources'] = {
      reservations: { cpu: cpu(r.resCpu), memory: mem(r.resMib) },
      limits: { cpu: cpu(r.resCpu + r.extraCpu), memory: mem(r.resMib + r.extraMib) },
    }
  }
  svc['placement'] = {
    constraints: order(m.constraints).map((c) => {
      const values = order(c.values)
      const attr = `node.labels.${c.label}`
      if (values.length === 1 && !alt) return `${attr} ${c.op === 'in' ? '==' : '!='} ${values[0]}`
      return `${attr} ${c.op === 'in' ? 'in' : 'not in'} (${values.join(', ')})`
    }),
    spread: m.spread.map((s) => (alt ? `node.labels.${s}` : s)),
    ...(m.maxPerNode !== null && { maxPerNode: m.maxPerNode }),
  }
  if (m.health !== null) {
    const h = m.health
    const check = h.kind === 'exec' ? { exec: ['check', String(h.port)] } : h.kind === 'http' ? { http: { port: h.port, path: '/' } } : { tcp: { port: h.port } }
    svc['healthcheck'] = { ...check, interval: secs(h.intervalS), retries: h.retries }
  }
  svc['restart'] = { delay: secs(m.restartDelayS) }
  svc['update'] = { parallelism: m.update.parallelism, delay: secs(m.update.delayS), order: m.update.order, maxFailureRatio: m.update.ratio }
  if (m.waitS !== null) svc['onHostLoss'] = `wait ${secs(m.waitS)}`
  svc['rebalance'] = m.rebalance
  const volumes = Object.fromEntries(m.mounts.filter((v) => v.kind === 'named').map((v) => [(v as { name: string }).name, null]))
  return stringify({ stack: 'prop', services: { app: svc }, volumes })
}

function parseOne(text: string): ServiceSpec {
  const r = parseStackText(text, { file: 'prop.yaml' })
  if (!r.ok) throw new Error(`${r.errors.map((e) => e.text).join('\n')}\n${text}`)
  return r.stack.services[0] as ServiceSpec
}

describe('canonical form', () => {
  it('parse → canonical → encode → decode → canonical is the identity (property)', () => {
    fc.assert(fc.property(model, (m) => {
      const spec = parseOne(render(m, 0))
      expect(canonicalService(spec)).toEqual(spec)
      const bytes = encodeService(spec)
      const back = decodeService(bytes)
      expect(back).toEqual(spec)
      expect(canonicalService(back)).toEqual(spec)
      expect(Buffer.from(encodeService(back)).equals(bytes)).toBe(true)
    }), { numRuns: 150 })
  })

  it('gives byte-identical encodings to specs that mean the same, however written (property)', () => {
    fc.assert(fc.property(model, (m) => {
      const a = parseOne(render(m, 0))
      const b = parseOne(render(m, 1))
      expect(Buffer.from(encodeService(a)).equals(encodeService(b))).toBe(true)
      expect(sameService(a, b)).toBe(true)
    }), { numRuns: 150 })
  })

  it('fills defaults and sorts a hand-written input, and is idempotent', () => {
    const input: ServiceSpecInput = {
      stack: 's', name: 'web', image: 'nginx', env: { Z: '1', A: '2' },
      ports: [{ target: 80, published: 8080 }, { target: 53, published: 53, protocol: 'udp' }],
      placement: { constraints: [{ attribute: 'node.labels', label: 'zone', op: 'in', values: ['b', 'a', 'b'] }] },
    }
    const c = canonicalService(input)
    expect(Object.keys(c)).toEqual([...Object.keys(c)].sort())
    expect(Object.keys(c.env)).toEqual(['A', 'Z'])
    expect(c.ports.map((p) => p.published)).toEqual([53, 8080])
    expect(c.placement.constraints[0]?.values).toEqual(['a', 'b'])
    expect(c.replicas).toBe(1)
    expect(canonicalService(c)).toEqual(c)
    expect(sameService(input, c)).toBe(true)
    expect(sameService(input, { ...input, replicas: 2 })).toBe(false)
  })

  it('rejects invalid specs with a SkeinError naming the field', () => {
    expect(() => canonicalService({ stack: 's', name: 'web', image: 'nginx', replicas: -1 })).toThrow(/invalid service spec: replicas: expected a whole number ≥ 0/)
    expect(() => canonicalService({ stack: 's', name: 'web', image: 'nginx', mode: 'global', replicas: 2 })).toThrow(/a global service has no replica count/)
    expect(() => canonicalService({ stack: 's', name: 'web', image: 'nginx', resources: { limits: { memoryBytes: 1 }, reservations: { memoryBytes: 2 } } })).toThrow(/the limit is below the reservation/)
    expect(() => canonicalService({ stack: 's', name: 'web', image: 'nginx', ports: [{ target: 80, hostIp: '127.0.0.1' }] })).toThrow(/a host IP needs mode "host"/)
    expect(() => canonicalService({ stack: 's', name: 'web', image: 'nginx', healthcheck: { kind: 'exec', command: ['x'], intervalMs: 2 ** 31 } })).toThrow(/healthcheck.intervalMs: expected a duration of at most 24h/)
    expect(() => canonicalService({ stack: 's', name: 'web', image: 'nginx', network: 'none', healthcheck: { kind: 'tcp', port: 80 } })).toThrow(/healthcheck: http and tcp health checks .* network "none" .* use an exec check/)
  })
})

describe('decodeService', () => {
  const good = canonicalService({ stack: 's', name: 'web', image: 'nginx:1.27' })

  it('refuses bytes that are too large, not msgpack, or not a spec', () => {
    expect(() => decodeService(new Uint8Array(MAX_SPEC_BYTES + 1))).toThrow(/the limit is 262144/)
    expect(() => decodeService(new Uint8Array([0x92, 0x01]))).toThrow(/not valid msgpack/)
    expect(() => decodeService(pack({ ...good, extra: 1 }))).toThrow(/invalid service spec/)
    expect(() => decodeService(pack({ ...good, replicas: 'three' }))).toThrow(/replicas/)
    expect(() => decodeService(pack([1, 2]))).toThrow(/invalid service spec/)
  })

  it('reads back what encodeService wrote', () => {
    expect(decodeService(encodeService(good))).toEqual(good)
  })
})
