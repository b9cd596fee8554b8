import { z } from 'zod'
import { decode, encode, type Decoded } from '../transport/codec.ts'
import { MAX_CONF_MEMBERS, MAX_PEER_ID_LENGTH } from './limits.ts'

/**
 * The consensus admin protocol: small one-way requests between a peer and the leader, beside
 * the Raft messages. A peer asks the leader to remove a voter or learner (itself when it leaves
 * gracefully, or another one for `skein voters remove`), and asks for the replication progress
 * of every member (only the leader knows it, for `skein voters`). Answers carry the request id.
 * msgpack, checked by zod under a size limit; `from` must be the authenticated sender.
 */

/** The direct-message protocol of admin messages. */
export const CONSENSUS_ADMIN_PROTOCOL = '/skein/raft-admin/1'
/** Largest admin message. */
export const MAX_ADMIN_MESSAGE_BYTES = 256 * 1024

const peerId = z.string().min(1).max(MAX_PEER_ID_LENGTH)
const counter = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

/** The schema of every admin message. */
export const adminMessageSchema = z.discriminatedUnion('t', [
  /** Please remove `id` from the configuration (through the log). */
  z.object({ t: z.literal('remove'), from: peerId, req: counter, id: peerId }),
  /** `id` is in no committed configuration any more. */
  z.object({ t: z.literal('removed'), from: peerId, req: counter, id: peerId }),
  /** Please send the replication progress of every member. */
  z.object({ t: z.literal('progress-req'), from: peerId, req: counter }),
  /** The leader's progress: match index per member, at `term`. */
  z.object({
    t: z.literal('progress'),
    from: peerId,
    req: counter,
    term: counter,
    lastIndex: counter,
    members: z.array(z.object({ id: peerId, match: counter, recentActive: z.boolean() })).max(2 * MAX_CONF_MEMBERS),
  }),
])

/** An admin message. */
export type AdminMessage = z.infer<typeof adminMessageSchema>

/** Encode an admin message. */
export function encodeAdminMessage(msg: AdminMessage): Uint8Array {
  return encode(msg)
}

/** Decode and check an admin message. Never throws. */
export function decodeAdminMessage(data: Uint8Array): Decoded<AdminMessage> {
  return decode(adminMessageSchema, data, MAX_ADMIN_MESSAGE_BYTES)
}
