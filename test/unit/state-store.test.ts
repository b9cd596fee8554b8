import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { bucketOf, compareEntries, entryHash, mergeEntry, StateStore } from '../../src/state/store.ts'
import { mismatchedBuckets } from '../../src/state/antientropy.ts'
import type { Entry } from '../../src/state/types.ts'
import { encode } from '../../src/transport/codec.ts'
import { toWire } from '../../src/state/messages.ts'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const entry = (key: string, wall: number, node: string, value: string | null, logical = 0, revision = 1): Entry =>
  ({ key, hlc: { wall, logical, node }, value: value === null ? null : bytes(value), revision })

/** Entries over a few keys, nodes and times, so that collisions and ties happen. */
const entryArb: fc.Arbitrary<Entry> = fc.record({
  key: fc.constantFrom('a', 'b', 'c', 'd'),
  wall: fc.integer({ min: 0, max: 6 }),
  logical: fc.integer({ min: 0, max: 2 }),
  node: fc.constantFrom('n1', 'n2', 'n3'),
  value: fc.option(fc.constantFrom('x', 'y', 'zz'), { nil: null }),
  revision: fc.integer({ min: 1, max: 3 }),
}).map((r) => entry(r.key, r.wall, r.node, r.value, r.logical, r.revision))

function storeOf(entries: readonly Entry[], historyLimit = 10, buckets = 16): StateStore {
  const s = new StateStore({ buckets, historyLimit })
  for (const e of entries) s.merge(e)
  return s
}

/** The store's whole observable state: entries, histories, digests. */
function fingerprint(s: StateStore): unknown {
  const keys = s.entries().map((e) => e.key)
  return {
    entries: Buffer.from(encode(s.entries().map(toWire))).toString('hex'),
    history: keys.map((k) => s.history(k).map((e) => Buffer.from(encode(toWire(e))).toString('hex'))),
    root: [...s.root()],
    buckets: [...s.bucketHashes()],
  }
}

describe('LWW merge', () => {
  it('is commutative, associative and idempotent', () => {
    const same = (a: Entry, b: Entry) => compareEntries(a, b) === 0
    fc.assert(fc.property(entryArb, entryArb, entryArb, (x, y0, z0) => {
      const y = { ...y0, key: x.key }
      const z = { ...z0, key: x.key }
      expect(same(mergeEntry(x, y), mergeEntry(y, x))).toBe(true)
      expect(same(mergeEntry(mergeEntry(x, y), z), mergeEntry(x, mergeEntry(y, z)))).toBe(true)
      expect(same(mergeEntry(x, x), x)).toBe(true)
    }))
  })

  it('gives the same store (entries, history, digests) in any order, with duplicates', () => {
    fc.assert(fc.property(fc.array(entryArb, { maxLength: 40 }), fc.infiniteStream(fc.nat()), (entries, rand) => {
      const withDups = [...entries, ...entries.filter((_, i) => i % 3 === 0)]
      const shuffled = [...withDups]
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = (rand.next().value as number) % (i + 1)
        ;[shuffled[i], shuffled[j]] = [shuffled[j] as Entry, shuffled[i] as Entry]
      }
      expect(fingerprint(storeOf(shuffled, 3))).toEqual(fingerprint(storeOf(entries, 3)))
    }))
  })

  it('orders by HLC, then node id', () => {
    expect(mergeEntry(entry('k', 5, 'a', 'old'), entry('k', 6, 'a', 'new')).value).toEqual(bytes('new'))
    expect(mergeEntry(entry('k', 5, 'b', 'b'), entry('k', 5, 'a', 'a')).value).toEqual(bytes('b'))
    expect(mergeEntry(entry('k', 5, 'a', 'x', 2), entry('k', 5, 'b', 'y', 1)).value).toEqual(bytes('x'))
  })

  it('a tombstone beats older writes and loses to newer ones', () => {
    const s = storeOf([entry('k', 5, 'a', 'v1')])
    expect(s.merge(entry('k', 6, 'b', null)).won).toBe(true)
    expect(s.get('k')?.value).toBeNull()
    expect(s.merge(entry('k', 5, 'c', 'late but older')).won).toBe(false)
    expect(s.get('k')?.value).toBeNull()
    expect(s.merge(entry('k', 7, 'a', 'recreated')).won).toBe(true)
    expect(s.get('k')?.value).toEqual(bytes('recreated'))
  })
})

describe('history', () => {
  it('keeps the last N revisions, oldest first', () => {
    const s = new StateStore({ buckets: 4, historyLimit: 3 })
    for (let i = 1; i <= 5; i++) s.merge(entry('k', i, 'a', `v${i}`, 0, i))
    expect(s.history('k').map((e) => e.revision)).toEqual([3, 4, 5])
    expect(s.nextRevision('k')).toBe(6)
    // An older write arriving late does not enter a full history; a newer one pushes out the oldest.
    expect(s.merge(entry('k', 2, 'b', 'late', 0, 2)).historyChanged).toBe(false)
    s.merge(entry('k', 9, 'a', null, 0, 6))
    expect(s.history('k').map((e) => e.revision)).toEqual([4, 5, 6])
  })

  it('records a losing concurrent write too (history depends only on the set of writes seen)', () => {
    const s = new StateStore({ buckets: 4, historyLimit: 10 })
    s.merge(entry('k', 10, 'a', 'winner', 0, 2))
    const r = s.merge(entry('k', 9, 'b', 'loser', 0, 2))
    expect(r.won).toBe(false)
    expect(r.historyChanged).toBe(true)
    expect(s.history('k').map((e) => e.value && new TextDecoder().decode(e.value))).toEqual(['loser', 'winner'])
  })

  it('is dropped with the key', () => {
    const s = storeOf([entry('k', 1, 'a', 'v'), entry('k', 2, 'a', null)])
    expect(s.drop('k')?.value).toBeNull()
    expect(s.history('k')).toEqual([])
    expect(s.get('k')).toBeUndefined()
  })
})

describe('digests', () => {
  it('root and bucket hashes are maintained incrementally and equal a from-scratch build', () => {
    fc.assert(fc.property(fc.array(entryArb, { maxLength: 30 }), fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 3 }), (entries, drops) => {
      const s = storeOf(entries)
      for (const k of drops) s.drop(k)
      const rebuilt = storeOf(s.entries())
      expect([...s.root()]).toEqual([...rebuilt.root()])
      expect([...s.bucketHashes()]).toEqual([...rebuilt.bucketHashes()])
    }))
  })

  it('an empty store has a zero root; one change moves the root and exactly one bucket', () => {
    const s = new StateStore({ buckets: 64, historyLimit: 10 })
    expect([...s.root()]).toEqual([0, 0, 0, 0, 0, 0, 0, 0])
    for (let i = 0; i < 500; i++) s.merge(entry(`svc-${i}`, 1000 + i, 'n1', `spec ${i}`))
    const before = { root: s.root(), buckets: s.bucketHashes() }
    s.merge(entry('svc-42', 5000, 'n2', 'scaled'))
    expect([...s.root()]).not.toEqual([...before.root])
    expect(mismatchedBuckets(before.buckets, s.bucketHashes())).toEqual([bucketOf('svc-42', 64)])
    expect(s.stamp('svc-42')?.slice(0, 4)).toEqual(['svc-42', 5000, 0, 'n2'])
  })

  it('spreads keys over the buckets', () => {
    const counts = new Array<number>(64).fill(0)
    for (let i = 0; i < 6400; i++) counts[bucketOf(`service-${i}`, 64)]! += 1
    expect(Math.min(...counts)).toBeGreaterThan(60)
    expect(Math.max(...counts)).toBeLessThan(150)
  })

  it('the entry hash covers every field', () => {
    const base = entry('k', 5, 'a', 'v', 1, 2)
    const h = entryHash(base)
    for (const other of [entry('k2', 5, 'a', 'v', 1, 2), entry('k', 6, 'a', 'v', 1, 2), entry('k', 5, 'b', 'v', 1, 2),
      entry('k', 5, 'a', 'w', 1, 2), entry('k', 5, 'a', null, 1, 2), entry('k', 5, 'a', 'v', 2, 2), entry('k', 5, 'a', 'v', 1, 3)]) {
      expect(entryHash(other)).not.toEqual(h)
    }
    expect(entryHash(entry('k', 5, 'a', 'v', 1, 2))).toEqual(h)
  })

  it('lists tombstones older than a bound, for collection', () => {
    const s = storeOf([entry('a', 10, 'n', null), entry('b', 20, 'n', null), entry('c', 5, 'n', 'live')])
    expect(s.tombstonesBefore(15).map((e) => e.key)).toEqual(['a'])
    expect(s.tombstonesBefore(100).map((e) => e.key)).toEqual(['a', 'b'])
  })
})
