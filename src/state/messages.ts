/**
 * Wire schemas for desired-state messages, with a bound on every field and count, and the
 * conversions between entries and their wire form. Decoding never throws: bad input comes back
 * as a reason (src/transport/codec.ts).
 */
import { z } from 'zod'
import { decode, type Decoded, type Same, type SenderCheck } from '../transport/codec.ts'
import type { PeerId } from '../transport/types.ts'
import { MAX_LOGICAL, MAX_WALL } from './hlc.ts'
import type { BroadcastMessage, DirectMessage, Entry, WireEntry, WireStamp } from './types.ts'

/** Bounds (docs/state.md lists them). */
export const LIMITS = {
  /** Characters in a key (a service name). */
  key: 256,
  /** Characters in a node id. */
  node: 128,
  /** Bytes in one entry's value. */
  value: 256 * 1024,
  /** Entries in one message. */
  entries: 1024,
  /** Stamps in one `stamps` message. */
  stamps: 16_384,
  /** Keys in each list of a `need` message. */
  needKeys: 16_384,
  /** Buckets (and so bucket hashes) in a message. */
  buckets: 4096,
  /** Revision numbers. */
  revision: Number.MAX_SAFE_INTEGER,
} as const

/** The largest direct message accepted: 1 MiB, the transport's frame limit. */
export const MAX_DIRECT_BYTES = 1024 * 1024
/** The largest gossip message accepted. */
export const MAX_BROADCAST_BYTES = 512 * 1024
/**
 * What a sender puts in one message, by its estimate (estimateEntryBytes), so that the encoded
 * message stays under the limits above with room for the envelope.
 */
export const DIRECT_BUDGET_BYTES = 768 * 1024
export const BROADCAST_BUDGET_BYTES = 384 * 1024

const uint = (max: number) => z.int().nonnegative().max(max)
const KEY_CHARS = /^[^\u0000-\u001f\u007f]+$/
/** Keys: non-empty, no control characters (so they print and log safely). */
const key = z.string().min(1).max(LIMITS.key).regex(KEY_CHARS, 'no control characters')

/** Is this a key the schemas accept (1–256 characters, no control characters)? */
export function isValidKey(k: string): boolean {
  return k.length >= 1 && k.length <= LIMITS.key && KEY_CHARS.test(k)
}

/** Is this a node id the schemas accept (1–128 characters)? */
export function isValidNodeId(n: string): boolean {
  return n.length >= 1 && n.length <= LIMITS.node
}
const node = z.string().min(1).max(LIMITS.node)
const bytes = (max: number) =>
  z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes').refine((b) => b.byteLength <= max, `more than ${max} bytes`)

const wireEntry = z.object({
  k: key,
  w: uint(MAX_WALL),
  l: uint(MAX_LOGICAL),
  n: node,
  r: uint(LIMITS.revision),
  v: bytes(LIMITS.value).nullable(),
})

const wireStamp = z.tuple([key, uint(MAX_WALL), uint(MAX_LOGICAL), node, uint(0xffffffff)])
const cur = z.boolean()

/** Schema of DirectMessage. */
export const DirectMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('root'), cur, root: bytes(8).refine((b) => b.byteLength === 8, 'expected 8 bytes') }),
  z.object({ t: z.literal('same'), cur }),
  z.object({ t: z.literal('buckets'), cur, hashes: bytes(8 * LIMITS.buckets).refine((b) => b.byteLength > 0 && b.byteLength % 8 === 0, 'expected a multiple of 8 bytes') }),
  z.object({ t: z.literal('stamps'), cur, n: z.int().min(1).max(LIMITS.buckets), buckets: z.array(uint(LIMITS.buckets - 1)).max(LIMITS.buckets), stamps: z.array(wireStamp).max(LIMITS.stamps) }),
  z.object({ t: z.literal('need'), cur, stale: z.array(key).max(LIMITS.needKeys), missing: z.array(key).max(LIMITS.needKeys) }),
  z.object({ t: z.literal('entries'), cur, entries: z.array(wireEntry).min(1).max(LIMITS.entries) }),
])

/** Schema of BroadcastMessage. */
export const BroadcastMessageSchema = z.object({
  t: z.literal('write'),
  cur,
  entries: z.array(wireEntry).min(1).max(LIMITS.entries),
})

// The schemas must produce exactly the shared types (a compile-time check).
const _directMatches: Same<z.infer<typeof DirectMessageSchema>, DirectMessage> = true
const _broadcastMatches: Same<z.infer<typeof BroadcastMessageSchema>, BroadcastMessage> = true
const _stampMatches: Same<z.infer<typeof wireStamp>, WireStamp> = true

/** Decode and validate a direct message. */
export function decodeDirect(data: Uint8Array): Decoded<DirectMessage> {
  return decode(DirectMessageSchema, data, MAX_DIRECT_BYTES)
}

/** Decode and validate a gossip message. */
export function decodeBroadcast(data: Uint8Array): Decoded<BroadcastMessage> {
  return decode(BroadcastMessageSchema, data, MAX_BROADCAST_BYTES)
}

/** A gossiped write must be the publisher's own: every entry's writer is the signed publisher. */
export function checkBroadcast(publisher: PeerId, msg: BroadcastMessage): SenderCheck {
  for (const e of msg.entries) {
    if (e.n !== publisher) return { ok: false, reason: `write to ${e.k} by ${e.n} published by ${publisher}` }
  }
  return { ok: true }
}

/** An entry in wire form. */
export function toWire(e: Entry): WireEntry {
  return { k: e.key, w: e.hlc.wall, l: e.hlc.logical, n: e.hlc.node, r: e.revision, v: e.value }
}

/** An entry from wire form. A value that is a view into a larger buffer (a decoded message) is copied out. */
export function fromWire(w: WireEntry): Entry {
  const v = w.v
  const value = v === null ? null : v.byteOffset === 0 && v.byteLength === v.buffer.byteLength && v.constructor === Uint8Array ? v : Uint8Array.from(v)
  return { key: w.k, hlc: { wall: w.w, logical: w.l, node: w.n }, revision: w.r, value }
}

/** A size estimate (an upper bound for msgpack) of an entry on the wire. */
export function estimateEntryBytes(e: Entry): number {
  return 3 * e.key.length + 3 * e.hlc.node.length + (e.value?.byteLength ?? 0) + 48
}

/** A size estimate (an upper bound for msgpack) of a stamp on the wire. */
export function estimateStampBytes(s: WireStamp): number {
  return 3 * s[0].length + 3 * s[3].length + 32
}
