/**
 * Pure helpers of the anti-entropy exchange: which buckets differ, how two lists of versions
 * differ, and how to cut stamp lists and entry lists into messages that fit the size limits.
 * The protocol itself (who sends what when) is in replica.ts; docs/state.md describes it.
 */
import { compareHlc } from './hlc.ts'
import { estimateEntryBytes, estimateStampBytes, LIMITS } from './messages.ts'
import type { StateStore } from './store.ts'
import type { Entry, WireStamp } from './types.ts'

/** The buckets whose 8-byte digests differ; undefined if the two lists have different lengths. */
export function mismatchedBuckets(local: Uint8Array, remote: Uint8Array): number[] | undefined {
  if (local.byteLength !== remote.byteLength || local.byteLength % 8 !== 0) return undefined
  const out: number[] = []
  for (let b = 0; b < local.byteLength / 8; b++) {
    for (let i = 8 * b; i < 8 * b + 8; i++) {
      if (local[i] !== remote[i]) {
        out.push(b)
        break
      }
    }
  }
  return out
}

/**
 * Order two stamps of one key: negative if `a` is older, positive if newer, 0 if the same
 * version. Same HLC with different entry hashes (which should not happen) counts as "differ":
 * NaN, and both sides then send their entry so that the entry order settles it.
 */
export function compareStamps(a: WireStamp, b: WireStamp): number {
  const c = compareHlc({ wall: a[1], logical: a[2], node: a[3] }, { wall: b[1], logical: b[2], node: b[3] })
  if (c !== 0) return c
  return a[4] === b[4] ? 0 : Number.NaN
}

/** How the local versions of some buckets differ from a remote's list for the same buckets. */
export interface StampDiff {
  /** Keys the remote lacks (held here). */
  remoteLacks: string[]
  /** Keys held on both sides where the local version is newer (or differs). */
  localNewer: string[]
  /** Keys held here only by the remote. */
  localLacks: string[]
  /** Keys held on both sides where the remote version is newer (or differs). */
  remoteNewer: string[]
}

/** Compare the local store's versions in `buckets` with the remote's stamps of those buckets. */
export function diffStamps(store: StateStore, buckets: readonly number[], remote: readonly WireStamp[]): StampDiff {
  const theirs = new Map<string, WireStamp>()
  for (const s of remote) theirs.set(s[0], s)
  const diff: StampDiff = { remoteLacks: [], localNewer: [], localLacks: [], remoteNewer: [] }
  const mine = new Set<string>()
  for (const b of buckets) {
    for (const key of store.keysIn(b)) {
      mine.add(key)
      const local = store.stamp(key)
      if (local === undefined) continue
      const other = theirs.get(key)
      if (other === undefined) { diff.remoteLacks.push(key); continue }
      const c = compareStamps(local, other)
      if (c > 0 || Number.isNaN(c)) diff.localNewer.push(key)
      if (c < 0 || Number.isNaN(c)) diff.remoteNewer.push(key)
    }
  }
  for (const key of theirs.keys()) if (!mine.has(key)) diff.localLacks.push(key)
  return diff
}

/** One `stamps` message's content: whole buckets, so the receiver can tell what the sender lacks. */
export interface StampChunk {
  buckets: number[]
  stamps: WireStamp[]
}

/**
 * The local stamps of `buckets`, cut into chunks of whole buckets under `budget` estimated bytes
 * and the schema's count limit. A single bucket too large for one message is left out (with the
 * default 64 buckets that takes about a million keys; raise `buckets` long before that).
 */
export function stampChunks(store: StateStore, buckets: readonly number[], budget: number): StampChunk[] {
  const out: StampChunk[] = []
  let cur: StampChunk = { buckets: [], stamps: [] }
  let size = 0
  for (const b of buckets) {
    const stamps: WireStamp[] = []
    let bytes = 0
    for (const key of store.keysIn(b)) {
      const s = store.stamp(key)
      if (s === undefined) continue
      stamps.push(s)
      bytes += estimateStampBytes(s)
    }
    if (stamps.length > LIMITS.stamps || bytes > budget) continue
    if (cur.buckets.length > 0 && (size + bytes > budget || cur.stamps.length + stamps.length > LIMITS.stamps || cur.buckets.length >= LIMITS.buckets)) {
      out.push(cur)
      cur = { buckets: [], stamps: [] }
      size = 0
    }
    cur.buckets.push(b)
    cur.stamps.push(...stamps)
    size += bytes
  }
  if (cur.buckets.length > 0) out.push(cur)
  return out
}

/** Cut entries into groups under `budget` estimated bytes and the schema's count limit (one entry always fits). */
export function entryChunks(entries: readonly Entry[], budget: number): Entry[][] {
  const out: Entry[][] = []
  let cur: Entry[] = []
  let size = 0
  for (const e of entries) {
    const bytes = estimateEntryBytes(e)
    if (cur.length > 0 && (size + bytes > budget || cur.length >= LIMITS.entries)) {
      out.push(cur)
      cur = []
      size = 0
    }
    cur.push(e)
    size += bytes
  }
  if (cur.length > 0) out.push(cur)
  return out
}

/** Cut a key list into pieces of at most `max` keys. */
export function keyChunks(keys: readonly string[], max: number = LIMITS.needKeys): string[][] {
  const out: string[][] = []
  for (let i = 0; i < keys.length; i += max) out.push(keys.slice(i, i + max))
  return out
}
