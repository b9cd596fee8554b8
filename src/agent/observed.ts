// The replicated table of observed replicas (pure). Each host writes only its own rows, as a whole
// set stamped with a per-host version; a peer keeps, per host, the set with the highest version
// (last writer wins per host). Gossip on OBSERVED_TOPIC carries one host's full set. The merge is
// commutative, associative and idempotent, so order and duplication of messages do not matter.
// Rows of hosts that are gone are kept: the scheduler decides with membership what they mean.
import { z } from 'zod'
import { decode, encode, type Decoded, type Same, type SenderCheck } from '../transport/codec.ts'
import type { PeerId } from '../transport/types.ts'
import type { ObservedReplica } from '../scheduler/types.ts'

/** The gossip topic of observed replicas. */
export const OBSERVED_TOPIC = 'skein/observed/1'

/** Bounds of the observed message. */
export const OBSERVED_LIMITS = { rows: 2_000, peerId: 128, service: 253, containerId: 128 } as const

/** The largest observed message accepted (bytes). A row is about 200 bytes. */
export const MAX_OBSERVED_BYTES = 512 * 1024

/** One host's full set of rows. */
export interface ObservedMessage {
  from: PeerId
  host: PeerId
  version: number
  rows: ObservedReplica[]
}

/** The table: per host, its newest version and rows. */
export type ObservedTable = ReadonlyMap<PeerId, { version: number; rows: readonly ObservedReplica[] }>

const uint = z.int().nonnegative()
const peerId = z.string().min(1).max(OBSERVED_LIMITS.peerId)
const time = z.number().int().nonnegative().nullable()

const rowSchema = z.object({
  service: z.string().min(1).max(OBSERVED_LIMITS.service),
  slot: uint.max(1_000_000),
  host: peerId,
  generation: uint,
  state: z.enum(['assigned', 'preparing', 'starting', 'running', 'stopping', 'stopped', 'failed', 'orphaned']),
  health: z.enum(['none', 'starting', 'healthy', 'unhealthy']),
  containerId: z.string().min(1).max(OBSERVED_LIMITS.containerId).nullable(),
  startedAt: time,
  exitCode: z.int().nullable(),
  restarts: uint,
  streak: uint,
  streakSince: time,
  updatedAt: uint,
})

/** Schema of ObservedMessage. */
export const ObservedMessageSchema = z.object({ from: peerId, host: peerId, version: uint, rows: z.array(rowSchema).max(OBSERVED_LIMITS.rows) })

const _matches: Same<z.infer<typeof ObservedMessageSchema>, ObservedMessage> = true

/** Encodes a message. */
export function encodeObserved(msg: ObservedMessage): Uint8Array {
  return encode(msg)
}

/** Decodes and validates a message; never throws. */
export function decodeObserved(data: Uint8Array): Decoded<ObservedMessage> {
  return decode(ObservedMessageSchema, data, MAX_OBSERVED_BYTES)
}

/** A host publishes only its own rows: `from` is the signed sender, `host` is `from`, every row's host is `host`. */
export function checkSender(from: PeerId, msg: ObservedMessage): SenderCheck {
  if (msg.from !== from) return { ok: false, reason: `message claims to be from ${msg.from} but came from ${from}` }
  if (msg.host !== from) return { ok: false, reason: `${from} published the rows of ${msg.host}` }
  const bad = msg.rows.find((r) => r.host !== msg.host)
  if (bad !== undefined) return { ok: false, reason: `${from} published a row of host ${bad.host}` }
  return { ok: true }
}

/** The next version for this host: greater than the last, and at least `now` (so it survives restarts). */
export function nextVersion(prev: number, now: number): number {
  return Math.max(prev + 1, Math.floor(now))
}

/** Canonical order of rows (service, slot, generation). */
export function sortRows(rows: readonly ObservedReplica[]): ObservedReplica[] {
  return [...rows].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : a.slot - b.slot || a.generation - b.generation))
}

/** Deterministic tie-break for two sets with the same version (only a buggy or forging host makes them). */
function key(rows: readonly ObservedReplica[]): string {
  return JSON.stringify(sortRows(rows))
}

/**
 * Merges one host's set into the table; returns the same table when nothing changes. A set wins
 * with a higher version, or with the same version and a greater canonical encoding.
 */
export function mergeObserved(table: ObservedTable, msg: Pick<ObservedMessage, 'host' | 'version' | 'rows'>): ObservedTable {
  const rows = sortRows(msg.rows.filter((r) => r.host === msg.host))
  const cur = table.get(msg.host)
  if (cur !== undefined) {
    if (msg.version < cur.version) return table
    if (msg.version === cur.version && key(rows) <= key(cur.rows)) return table
  }
  const next = new Map(table)
  next.set(msg.host, { version: msg.version, rows })
  return next
}

/** Every row of the table, hosts in id order. */
export function allRows(table: ObservedTable): ObservedReplica[] {
  return [...table.keys()].sort().flatMap((h) => [...(table.get(h)?.rows ?? [])])
}
