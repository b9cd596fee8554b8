import { z } from 'zod'
import { decode, encode, type Decoded } from '../transport/codec.ts'
import {
  MAX_CONF_MEMBERS, MAX_ENTRIES_PER_MESSAGE, MAX_ENTRY_BYTES, MAX_PEER_ID_LENGTH, MAX_RAFT_MESSAGE_BYTES, MAX_SNAPSHOT_BYTES,
} from './limits.ts'
import type { RaftMessage } from './types.ts'

/**
 * The Raft wire format: msgpack of the RaftMessage objects, checked on the way in by the zod
 * schemas below (with a bound on every field), under a size limit. Decoding never throws.
 */

/** The direct-message protocol Raft messages travel on. */
export const RAFT_PROTOCOL = '/skein/raft/1'

const peerId = z.string().min(1).max(MAX_PEER_ID_LENGTH)
const counter = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const bytes = (max: number) =>
  z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes').refine((b) => b.byteLength <= max, `more than ${max} bytes`)

const entrySchema = z.object({
  term: counter,
  index: counter.min(1),
  type: z.enum(['normal', 'conf', 'empty']),
  data: bytes(MAX_ENTRY_BYTES),
})

const confStateSchema = z.object({
  voters: z.array(peerId).max(MAX_CONF_MEMBERS),
  learners: z.array(peerId).max(MAX_CONF_MEMBERS),
})

const snapshotSchema = z.object({
  index: counter,
  term: counter,
  conf: confStateSchema,
  data: bytes(MAX_SNAPSHOT_BYTES),
})

const base = { from: peerId, to: peerId, term: counter }

const voteRequest = { ...base, lastIndex: counter, lastTerm: counter, transfer: z.boolean() }
const voteResponse = { ...base, reject: z.boolean() }

/** The schema of every Raft message (a discriminated union on `type`). */
export const raftMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('pre-vote'), ...voteRequest }),
  z.object({ type: z.literal('vote'), ...voteRequest }),
  z.object({ type: z.literal('pre-vote-resp'), ...voteResponse }),
  z.object({ type: z.literal('vote-resp'), ...voteResponse }),
  z.object({
    type: z.literal('append'),
    ...base,
    prevIndex: counter,
    prevTerm: counter,
    entries: z.array(entrySchema).max(MAX_ENTRIES_PER_MESSAGE),
    commit: counter,
  }),
  z.object({
    type: z.literal('append-resp'),
    ...base,
    index: counter,
    reject: z.boolean(),
    hintIndex: counter,
    hintTerm: counter,
  }),
  z.object({ type: z.literal('heartbeat'), ...base, commit: counter }),
  z.object({ type: z.literal('heartbeat-resp'), ...base }),
  z.object({ type: z.literal('snapshot'), ...base, snapshot: snapshotSchema }),
  z.object({ type: z.literal('timeout-now'), ...base }),
])

// The schema and the core's types describe the same messages, both ways.
type Wire = z.infer<typeof raftMessageSchema>
const _toCore = (m: Wire): RaftMessage => m
const _toWire = (m: RaftMessage): Wire => m
void _toCore
void _toWire

/** Encode a message for the wire. */
export function encodeRaftMessage(msg: RaftMessage): Uint8Array {
  return encode(msg)
}

/** Decode and check a message from the wire. Never throws. */
export function decodeRaftMessage(data: Uint8Array, maxBytes: number = MAX_RAFT_MESSAGE_BYTES): Decoded<RaftMessage> {
  return decode(raftMessageSchema, data, maxBytes)
}
