/**
 * Wire schemas for membership messages, with tight bounds, and the forgery checks that tie a
 * message to its authenticated sender. Decoding never throws: bad input comes back as a reason.
 */
import { z } from 'zod'
import { decode, type Decoded, type Same, type SenderCheck } from '../transport/codec.ts'
import type { PeerId } from '../transport/types.ts'
import { MAX_PUSH_PULL_MEMBERS } from './records.ts'
import type { BroadcastMessage, DirectMessage } from './types.ts'

/** Bounds on the fields (docs/membership.md lists them). */
export const LIMITS = {
  peerId: 128,
  name: 64,
  address: 256,
  labels: 64,
  labelKey: 63,
  labelValue: 128,
  updates: 256,
  pushPullMembers: MAX_PUSH_PULL_MEMBERS,
} as const

/**
 * The largest direct message accepted: 1 MiB, the libp2p adapter's frame limit. A push-pull row
 * is about 150–250 bytes with a few labels, so this holds several thousand members; the shell
 * trims a larger push-pull to fit (docs/membership.md).
 */
export const MAX_DIRECT_BYTES = 1024 * 1024

/** The largest gossip message accepted. */
export const MAX_BROADCAST_BYTES = 256 * 1024

const uint = z.int().nonnegative()
const peerId = z.string().min(1).max(LIMITS.peerId)
const name = z.string().max(LIMITS.name)
const address = z.string().max(LIMITS.address)
/** Label keys: letters, digits, `.`, `_`, `/`, `-`, starting with a letter or digit (so no `__proto__`). */
const labelKey = z.string().min(1).max(LIMITS.labelKey).regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/)
const labels = z
  .record(labelKey, z.string().max(LIMITS.labelValue))
  .refine((o) => Object.keys(o).length <= LIMITS.labels, { message: `at most ${LIMITS.labels} labels` })
const memberState = z.enum(['alive', 'suspect', 'dead', 'left'])

const update = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('alive'), id: peerId, inc: uint, name, address, labels }),
  z.object({ kind: z.literal('suspect'), id: peerId, inc: uint, from: peerId }),
  z.object({ kind: z.literal('dead'), id: peerId, inc: uint, from: peerId }),
  z.object({ kind: z.literal('left'), id: peerId, inc: uint }),
])

const memberRecord = z.object({ id: peerId, name, address, labels, state: memberState, incarnation: uint })

/** Schema of DirectMessage. */
export const DirectMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('ping'), seq: uint, from: peerId }),
  z.object({ t: z.literal('ack'), seq: uint, from: peerId }),
  z.object({ t: z.literal('ping-req'), seq: uint, from: peerId, target: peerId, address }),
  z.object({ t: z.literal('nack'), seq: uint, from: peerId }),
  z.object({ t: z.literal('push-pull'), from: peerId, reply: z.boolean(), members: z.array(memberRecord).max(LIMITS.pushPullMembers) }),
])

/** Schema of BroadcastMessage. */
export const BroadcastMessageSchema = z.object({
  t: z.literal('updates'),
  from: peerId,
  updates: z.array(update).min(1).max(LIMITS.updates),
})

// The schemas must produce exactly the shared types (a compile-time check).
const _directMatches: Same<z.infer<typeof DirectMessageSchema>, DirectMessage> = true
const _broadcastMatches: Same<z.infer<typeof BroadcastMessageSchema>, BroadcastMessage> = true

/** Decode and validate a direct message. */
export function decodeDirect(data: Uint8Array): Decoded<DirectMessage> {
  return decode(DirectMessageSchema, data, MAX_DIRECT_BYTES)
}

/** Decode and validate a gossip message. */
export function decodeBroadcast(data: Uint8Array): Decoded<BroadcastMessage> {
  return decode(BroadcastMessageSchema, data, MAX_BROADCAST_BYTES)
}

function isBroadcast(msg: DirectMessage | BroadcastMessage): msg is BroadcastMessage {
  return msg.t === 'updates'
}

/**
 * Forgery checks against the authenticated sender `from` (the connection's peer id for direct
 * messages, the signed publisher for gossip): `msg.from` must be the sender; in gossip, alive and
 * left claims must be about the sender itself, and suspect/dead claims must be the sender's own
 * accusation (`update.from` = sender) about some other peer. So each peer only publishes its own
 * assertions, and nobody can fake another peer's confirmation of a suspicion.
 */
export function checkSender(from: PeerId, msg: DirectMessage | BroadcastMessage): SenderCheck {
  if (msg.from !== from) return { ok: false, reason: `message claims to be from ${msg.from} but came from ${from}` }
  if (!isBroadcast(msg)) {
    if (msg.t === 'ping-req' && msg.target === from) return { ok: false, reason: 'ping-req about the requester itself' }
    return { ok: true }
  }
  for (const u of msg.updates) {
    if (u.kind === 'alive' || u.kind === 'left') {
      if (u.id !== from) return { ok: false, reason: `${u.kind} claim about ${u.id} published by ${from}` }
    } else {
      if (u.from !== from) return { ok: false, reason: `${u.kind} claim accused by ${u.from} published by ${from}` }
      if (u.id === from) return { ok: false, reason: `${u.kind} claim about the publisher itself` }
    }
  }
  return { ok: true }
}
