import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { entryChunks, keyChunks, stampChunks } from '../../src/state/antientropy.ts'
import {
  BROADCAST_BUDGET_BYTES, checkBroadcast, decodeBroadcast, decodeDirect, DIRECT_BUDGET_BYTES, fromWire, LIMITS, MAX_BROADCAST_BYTES,
  MAX_DIRECT_BYTES, toWire,
} from '../../src/state/messages.ts'
import { StateStore } from '../../src/state/store.ts'
import type { BroadcastMessage, DirectMessage, Entry, WireEntry } from '../../src/state/types.ts'
import { encode } from '../../src/transport/codec.ts'

const direct = (v: unknown) => decodeDirect(encode(v))
const broadcast = (v: unknown) => decodeBroadcast(encode(v))
const hex = (v: unknown) => Buffer.from(encode(v)).toString('hex')

const key = fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/)
const node = fc.string({ minLength: 1, maxLength: 60 })
const wireEntry: fc.Arbitrary<WireEntry> = fc.record({
  k: key, w: fc.nat({ max: 2 ** 48 - 1 }), l: fc.nat({ max: 0xffff }), n: node, r: fc.nat({ max: 1e9 }),
  v: fc.option(fc.uint8Array({ maxLength: 100 }), { nil: null }),
})
const cur = fc.boolean()
const directMsg: fc.Arbitrary<DirectMessage> = fc.oneof(
  fc.record({ t: fc.constant('root' as const), cur, root: fc.uint8Array({ minLength: 8, maxLength: 8 }) }),
  fc.record({ t: fc.constant('same' as const), cur }),
  fc.record({ t: fc.constant('buckets' as const), cur, hashes: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => new Uint8Array([...b, ...b])) }),
  fc.record({ t: fc.constant('stamps' as const), cur, n: fc.integer({ min: 1, max: 4096 }), buckets: fc.array(fc.nat({ max: 63 }), { maxLength: 5 }), stamps: fc.array(fc.tuple(key, fc.nat({ max: 2 ** 48 - 1 }), fc.nat({ max: 0xffff }), node, fc.nat({ max: 0xffffffff })), { maxLength: 5 }) }),
  fc.record({ t: fc.constant('need' as const), cur, stale: fc.array(key, { maxLength: 5 }), missing: fc.array(key, { maxLength: 5 }) }),
  fc.record({ t: fc.constant('entries' as const), cur, entries: fc.array(wireEntry, { minLength: 1, maxLength: 4 }) }),
)

const entry = (k: string, value: Uint8Array | null, n = 'n1'): Entry => ({ key: k, hlc: { wall: 1, logical: 0, node: n }, value, revision: 1 })

describe('desired-state wire schemas', () => {
  it('round-trips every valid message (property)', () => {
    fc.assert(fc.property(directMsg, (m) => {
      const d = direct(m)
      expect(d.ok).toBe(true)
      if (d.ok) expect(hex(d.value)).toBe(hex(m))
    }))
    fc.assert(fc.property(cur, fc.array(wireEntry, { minLength: 1, maxLength: 4 }), (c, entries) => {
      const m: BroadcastMessage = { t: 'write', cur: c, entries }
      const d = broadcast(m)
      expect(d.ok).toBe(true)
      if (d.ok) expect(hex(d.value)).toBe(hex(m))
    }))
  })

  it('never throws on arbitrary bytes or values (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      expect(typeof decodeDirect(bytes).ok).toBe('boolean')
      expect(typeof decodeBroadcast(bytes).ok).toBe('boolean')
    }))
    fc.assert(fc.property(fc.anything(), (v) => {
      expect(typeof direct(v).ok).toBe('boolean')
      expect(typeof broadcast(v).ok).toBe('boolean')
    }))
  })

  const good: WireEntry = { k: 'web', w: 1, l: 0, n: 'n1', r: 1, v: new Uint8Array([1]) }
  const bad: [string, unknown][] = [
    ['an unknown type', { t: 'hello', cur: true }],
    ['a missing status flag', { t: 'same' }],
    ['a root of the wrong size', { t: 'root', cur: true, root: new Uint8Array(7) }],
    ['a root that is not bytes', { t: 'root', cur: true, root: 'abcdefgh' }],
    ['bucket hashes not a multiple of 8 bytes', { t: 'buckets', cur: true, hashes: new Uint8Array(12) }],
    ['too many bucket hashes', { t: 'buckets', cur: true, hashes: new Uint8Array(8 * LIMITS.buckets + 8) }],
    ['a bucket number out of range', { t: 'stamps', cur: true, n: 64, buckets: [LIMITS.buckets], stamps: [] }],
    ['no bucket count', { t: 'stamps', cur: true, buckets: [0], stamps: [] }],
    ['a zero bucket count', { t: 'stamps', cur: true, n: 0, buckets: [0], stamps: [] }],
    ['a malformed stamp', { t: 'stamps', cur: true, n: 64, buckets: [0], stamps: [['k', 1, 0]] }],
    ['a stamp with a negative time', { t: 'stamps', cur: true, n: 64, buckets: [0], stamps: [['k', -1, 0, 'n', 0]] }],
    ['too many stamps', { t: 'stamps', cur: true, n: 64, buckets: [0], stamps: Array.from({ length: LIMITS.stamps + 1 }, () => ['k', 1, 0, 'n', 0]) }],
    ['too many needed keys', { t: 'need', cur: true, stale: Array.from({ length: LIMITS.needKeys + 1 }, () => 'k'), missing: [] }],
    ['an empty entry list', { t: 'entries', cur: true, entries: [] }],
    ['too many entries', { t: 'entries', cur: true, entries: Array.from({ length: LIMITS.entries + 1 }, () => ({ ...good, v: null })) }],
    ['an empty key', { t: 'entries', cur: true, entries: [{ ...good, k: '' }] }],
    ['a key that is too long', { t: 'entries', cur: true, entries: [{ ...good, k: 'k'.repeat(LIMITS.key + 1) }] }],
    ['a key with control characters', { t: 'entries', cur: true, entries: [{ ...good, k: 'we\nb' }] }],
    ['a node id that is too long', { t: 'entries', cur: true, entries: [{ ...good, n: 'n'.repeat(LIMITS.node + 1) }] }],
    ['a wall time beyond 2^48', { t: 'entries', cur: true, entries: [{ ...good, w: 2 ** 48 }] }],
    ['a logical counter beyond 2^16', { t: 'entries', cur: true, entries: [{ ...good, l: 0x10000 }] }],
    ['a fractional revision', { t: 'entries', cur: true, entries: [{ ...good, r: 1.5 }] }],
    ['a value that is not bytes', { t: 'entries', cur: true, entries: [{ ...good, v: 'spec' }] }],
    ['a value over 256 KiB', { t: 'entries', cur: true, entries: [{ ...good, v: new Uint8Array(LIMITS.value + 1) }] }],
  ]
  for (const [what, value] of bad) {
    it(`rejects a direct message with ${what}`, () => {
      expect(direct(value).ok).toBe(false)
    })
  }

  it('accepts a value of exactly 256 KiB', () => {
    expect(direct({ t: 'entries', cur: true, entries: [{ ...good, v: new Uint8Array(LIMITS.value) }] }).ok).toBe(true)
  })

  it('rejects malformed broadcasts', () => {
    expect(broadcast({ t: 'write', cur: true, entries: [] }).ok).toBe(false)
    expect(broadcast({ t: 'entries', cur: true, entries: [good] }).ok).toBe(false)
    expect(broadcast({ t: 'write', entries: [good] }).ok).toBe(false)
  })

  it('rejects oversized and empty messages before parsing them', () => {
    expect(decodeDirect(new Uint8Array(MAX_DIRECT_BYTES + 1)).ok).toBe(false)
    expect(decodeBroadcast(new Uint8Array(MAX_BROADCAST_BYTES + 1)).ok).toBe(false)
    expect(decodeDirect(new Uint8Array(0)).ok).toBe(false)
  })

  it('requires every gossiped write to be the publisher\'s own', () => {
    expect(checkBroadcast('n1', { t: 'write', cur: true, entries: [good] }).ok).toBe(true)
    expect(checkBroadcast('n2', { t: 'write', cur: true, entries: [good] }).ok).toBe(false)
  })

  it('converts entries to and from the wire, copying values out of a shared buffer', () => {
    const big = new Uint8Array(10).fill(7)
    const view = big.subarray(2, 5)
    const e = fromWire(toWire(entry('k', view)))
    expect([...(e.value ?? [])]).toEqual([7, 7, 7])
    expect(e.value?.buffer).not.toBe(big.buffer)
    const own = new Uint8Array([1, 2])
    expect(fromWire(toWire(entry('k', own))).value).toBe(own)
  })
})

describe('message sizing', () => {
  it('cuts entries so that every message fits the limits', () => {
    const entries = Array.from({ length: 12 }, (_, i) => entry(`svc-${i}`, new Uint8Array(LIMITS.value)))
    const chunks = entryChunks(entries, DIRECT_BUDGET_BYTES)
    expect(chunks.flat()).toHaveLength(12)
    for (const c of chunks) {
      const d = direct({ t: 'entries', cur: true, entries: c.map(toWire) })
      expect(d.ok).toBe(true)
    }
    for (const c of entryChunks(entries, BROADCAST_BUDGET_BYTES)) {
      expect(broadcast({ t: 'write', cur: true, entries: c.map(toWire) }).ok).toBe(true)
    }
    const small = Array.from({ length: 3000 }, (_, i) => entry(`s${i}`, null))
    expect(entryChunks(small, DIRECT_BUDGET_BYTES).map((c) => c.length)).toEqual([1024, 1024, 952])
  })

  it('cuts stamp lists at whole buckets and key lists at the count limit', () => {
    const s = new StateStore({ buckets: 64, historyLimit: 2 })
    for (let i = 0; i < 20_000; i++) s.merge({ key: `service-with-a-longish-name-${i}`, hlc: { wall: 1e12, logical: 0, node: 'n'.repeat(52) }, value: null, revision: 1 })
    const all = Array.from({ length: 64 }, (_, b) => b)
    const chunks = stampChunks(s, all, DIRECT_BUDGET_BYTES)
    expect(chunks.length).toBeGreaterThan(1)
    expect(chunks.flatMap((c) => c.buckets).sort((a, b) => a - b)).toEqual(all)
    for (const c of chunks) {
      const d = direct({ t: 'stamps', cur: true, n: 64, buckets: c.buckets, stamps: c.stamps })
      expect(d.ok).toBe(true)
      expect(encode({ t: 'stamps', cur: true, n: 64, buckets: c.buckets, stamps: c.stamps }).byteLength).toBeLessThanOrEqual(MAX_DIRECT_BYTES)
    }
    expect(keyChunks(Array.from({ length: 40_000 }, (_, i) => `k${i}`)).map((c) => c.length)).toEqual([16_384, 16_384, 7232])
  })
})
