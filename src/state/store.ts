/**
 * The desired-state store: key → winning entry (last writer wins), per-key revision history, and
 * incrementally maintained digests for anti-entropy. Pure data structure: no clock, no I/O; the
 * replica (replica.ts) decides what to merge and turns the results into effects.
 *
 * Order of entries (compareEntries): HLC (wall, logical, node), then a tombstone before a value,
 * then the value bytes, then the revision. Two writes share an HLC only if a writer reissued a
 * timestamp (it never does: its clock restarts above everything it persisted), so the last three
 * are a safety net that keeps merge a deterministic max whatever arrives.
 */
import { compareHlc, type Hlc } from './hlc.ts'
import { Hasher, hashBytes, hashString, type Hash64 } from './hash.ts'
import type { Entry, WireStamp } from './types.ts'

/** Total order of entries (see the file comment). */
export function compareEntries(a: Entry, b: Entry): number {
  const c = compareHlc(a.hlc, b.hlc)
  if (c !== 0) return c
  if (a.value === null || b.value === null) {
    if (a.value === b.value) return a.revision - b.revision
    return a.value === null ? -1 : 1
  }
  const v = compareBytes(a.value, b.value)
  return v !== 0 ? v : a.revision - b.revision
}

/** Lexicographic comparison of byte strings. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number)
    if (d !== 0) return d
  }
  return a.length - b.length
}

/** The LWW merge of two versions of one key: the greater one. Commutative, associative, idempotent. */
export function mergeEntry(local: Entry | undefined, remote: Entry): Entry {
  return local === undefined || compareEntries(remote, local) > 0 ? remote : local
}

const valueHashes = new WeakMap<Uint8Array, Hash64>()

/** The 64-bit hash of an entry (all fields). Value hashes are memoised per byte array. */
export function entryHash(e: Entry): Hash64 {
  let vh: Hash64 = { hi: 0, lo: 0 }
  if (e.value !== null) {
    const memo = valueHashes.get(e.value)
    vh = memo ?? hashBytes(e.value, 1)
    if (memo === undefined) valueHashes.set(e.value, vh)
  }
  return new Hasher().string(e.key).uint(e.hlc.wall).word(e.hlc.logical).string(e.hlc.node)
    .word(e.value === null ? 0 : 1).word(vh.hi).word(vh.lo).uint(e.revision).digest()
}

/** The anti-entropy bucket of a key, in [0, buckets). */
export function bucketOf(key: string, buckets: number): number {
  return hashString(key, 7).lo % buckets
}

/** Is the entry a tombstone? */
export function isTombstone(e: Entry): boolean {
  return e.value === null
}

interface Slot {
  entry: Entry
  hash: Hash64
  bucket: number
}

/** What merging one entry did. */
export interface MergeResult {
  /** The entry became the winner for its key. */
  won: boolean
  /** The winner before, if any. */
  previous: Entry | undefined
  /** The key's history changed (it may change even when the entry lost). */
  historyChanged: boolean
}

/** The store. */
export class StateStore {
  readonly buckets: number
  readonly historyLimit: number
  readonly #slots = new Map<string, Slot>()
  readonly #history = new Map<string, Entry[]>()
  /** Per bucket: hi, lo of the XOR of its entries' hashes. */
  readonly #bucketHash: Uint32Array
  #rootHi = 0
  #rootLo = 0
  readonly #perBucket: Set<string>[]

  constructor(opts: { buckets: number; historyLimit: number }) {
    this.buckets = opts.buckets
    this.historyLimit = opts.historyLimit
    this.#bucketHash = new Uint32Array(2 * opts.buckets)
    this.#perBucket = Array.from({ length: opts.buckets }, () => new Set<string>())
  }

  /** The winning entry for a key (tombstones included). */
  get(key: string): Entry | undefined {
    return this.#slots.get(key)?.entry
  }

  /** Number of keys held (tombstones included). */
  get size(): number {
    return this.#slots.size
  }

  /** Every entry, tombstones included, sorted by key. */
  entries(): Entry[] {
    return [...this.#slots.values()].map((s) => s.entry).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  /** The largest HLC held (in entries or history), for restarting a clock above it. */
  maxHlc(): Hlc | undefined {
    let max: Hlc | undefined
    for (const s of this.#slots.values()) if (max === undefined || compareHlc(s.entry.hlc, max) > 0) max = s.entry.hlc
    for (const list of this.#history.values()) {
      for (const e of list) if (max === undefined || compareHlc(e.hlc, max) > 0) max = e.hlc
    }
    return max
  }

  /** The key's history, oldest first (at most historyLimit entries). */
  history(key: string): Entry[] {
    return [...(this.#history.get(key) ?? [])]
  }

  /** The revision a new local write to `key` gets: one more than any revision held for it. */
  nextRevision(key: string): number {
    let r = this.get(key)?.revision ?? 0
    for (const e of this.#history.get(key) ?? []) r = Math.max(r, e.revision)
    return r + 1
  }

  /** Merge an entry by LWW, and into the key's history. */
  merge(entry: Entry): MergeResult {
    const slot = this.#slots.get(entry.key)
    const previous = slot?.entry
    const historyChanged = this.#addHistory(entry)
    if (previous !== undefined && compareEntries(entry, previous) <= 0) return { won: false, previous, historyChanged }
    if (slot !== undefined) this.#xor(slot.bucket, slot.hash)
    const bucket = slot?.bucket ?? bucketOf(entry.key, this.buckets)
    const hash = entryHash(entry)
    this.#slots.set(entry.key, { entry, hash, bucket })
    this.#perBucket[bucket]?.add(entry.key)
    this.#xor(bucket, hash)
    return { won: true, previous, historyChanged }
  }

  /** Restore a persisted history list without touching the winners. */
  restoreHistory(list: readonly Entry[]): void {
    for (const e of list) this.#addHistory(e)
  }

  /** Remove a key and its history entirely; returns the entry it held. */
  drop(key: string): Entry | undefined {
    const slot = this.#slots.get(key)
    if (slot === undefined) return undefined
    this.#xor(slot.bucket, slot.hash)
    this.#slots.delete(key)
    this.#perBucket[slot.bucket]?.delete(key)
    this.#history.delete(key)
    return slot.entry
  }

  /** Tombstones whose HLC wall time is below `wallBefore`, sorted by key. */
  tombstonesBefore(wallBefore: number): Entry[] {
    const out: Entry[] = []
    for (const s of this.#slots.values()) if (s.entry.value === null && s.entry.hlc.wall < wallBefore) out.push(s.entry)
    return out.sort((a, b) => (a.key < b.key ? -1 : 1))
  }

  /** The root digest: 8 bytes, the XOR of every entry's hash. Equal roots ⇔ equal stores (whp). */
  root(): Uint8Array {
    return pack64(this.#rootHi, this.#rootLo)
  }

  /** Every bucket's digest, 8 bytes each. */
  bucketHashes(): Uint8Array {
    const out = new Uint8Array(8 * this.buckets)
    const view = new DataView(out.buffer)
    for (let b = 0; b < this.buckets; b++) {
      view.setUint32(8 * b, this.#bucketHash[2 * b] as number)
      view.setUint32(8 * b + 4, this.#bucketHash[2 * b + 1] as number)
    }
    return out
  }

  /** The keys in a bucket (sorted). */
  keysIn(bucket: number): string[] {
    return [...(this.#perBucket[bucket] ?? [])].sort()
  }

  /** The stamp of a held key. */
  stamp(key: string): WireStamp | undefined {
    const s = this.#slots.get(key)
    if (s === undefined) return undefined
    return [key, s.entry.hlc.wall, s.entry.hlc.logical, s.entry.hlc.node, s.hash.lo]
  }

  #xor(bucket: number, h: Hash64): void {
    this.#bucketHash[2 * bucket] = ((this.#bucketHash[2 * bucket] as number) ^ h.hi) >>> 0
    this.#bucketHash[2 * bucket + 1] = ((this.#bucketHash[2 * bucket + 1] as number) ^ h.lo) >>> 0
    this.#rootHi = (this.#rootHi ^ h.hi) >>> 0
    this.#rootLo = (this.#rootLo ^ h.lo) >>> 0
  }

  /** History = the historyLimit greatest entries ever seen for the key (so it is order-independent). */
  #addHistory(entry: Entry): boolean {
    let list = this.#history.get(entry.key)
    if (list === undefined) this.#history.set(entry.key, (list = []))
    let i = list.length
    while (i > 0 && compareEntries(list[i - 1] as Entry, entry) > 0) i--
    if (i > 0 && compareEntries(list[i - 1] as Entry, entry) === 0) return false
    if (i === 0 && list.length >= this.historyLimit) return false
    list.splice(i, 0, entry)
    if (list.length > this.historyLimit) list.splice(0, list.length - this.historyLimit)
    return true
  }
}

/** 8 big-endian bytes from two 32-bit halves. */
export function pack64(hi: number, lo: number): Uint8Array {
  const out = new Uint8Array(8)
  const view = new DataView(out.buffer)
  view.setUint32(0, hi >>> 0)
  view.setUint32(4, lo >>> 0)
  return out
}

/** Are two byte strings equal? */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0
}
