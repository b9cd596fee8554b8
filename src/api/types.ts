import { z } from 'zod'
import type { MemberState } from '../membership/types.ts'
import type { VoterInfo } from '../consensus/status.ts'

/**
 * The JSON views of the HTTP API (docs/api.md), shared by the server, the client and the CLI's
 * `--json` output. Views only grow: later versions add fields, never rename or remove them.
 */

/** One member as this peer sees it: an element of GET /v1/nodes and of `skein nodes --json`. */
export interface NodeView {
  /** The peer id (libp2p, e.g. `12D3KooW…`). */
  id: string
  name: string
  /** Where others dial it: `host:port`. */
  address: string
  state: MemberState
  labels: Record<string, string>
  /** The member's incarnation number (grows when it refutes a suspicion or restarts). */
  incarnation: number
  /** ISO time of the last state change, as seen by this peer. */
  since: string
  /** True for the peer that answered. */
  self: boolean
}

/** Member counts by state. */
export interface MemberCounts {
  alive: number
  suspect: number
  dead: number
  left: number
  total: number
}

/** This peer's own view: GET /v1/status and `skein status --json`. */
export interface StatusView {
  id: string
  name: string
  /** Short public id of the cluster: first 12 hex digits of sha256(cluster key). */
  clusterId: string
  /** This peer's advertised `host:port`. */
  address: string
  labels: Record<string, string>
  incarnation: number
  members: MemberCounts
  /** ISO time the agent started. */
  startedAt: string
  uptimeSeconds: number
  version: string
  pid: number
  /** Transport counters since start: wire bytes, messages, rejected inputs. */
  transport?: TransportStatsView
  /** The Raft leader's node name (its peer id if membership does not know it), or null when none is known. */
  leader: string | null
  /** The Raft leader's peer id, or null. */
  leaderId: string | null
  /** This peer's current Raft term. */
  term: number
  /** This peer's Raft role. */
  role: RaftRole
  /** Highest log index known to be committed. */
  commitIndex: number
  /** Highest log index applied on this peer. */
  appliedIndex: number
}

/** A Raft role. A follower in no configuration yet (a joiner not yet added) reports `follower`. */
export type RaftRole = 'leader' | 'follower' | 'candidate' | 'pre-candidate' | 'learner'

/** One voter or learner: an element of GET /v1/voters and of `skein voters --json`. */
export type VoterView = VoterInfo

/** The answer to POST /v1/voters/remove. */
export interface RemoveVoterView {
  removed: true
  id: string
  name: string | null
  /** True when the change was forced locally without a leader (`--force`). */
  forced: boolean
}

/** The answer to POST /v1/debug/propose (agents started with --debug-api only). */
export interface DebugProposeView {
  count: number
  term: number
  firstIndex: number
  lastIndex: number
  /** From the first proposal until the last entry was applied here. */
  elapsedMs: number
  /** Per-entry time from proposal to local apply, in proposal order. */
  latenciesMs: number[]
  /** This process's memory when the run ended (process.memoryUsage, MB). */
  memoryMb?: { rss: number; heapUsed: number; heapTotal: number; external: number }
}

/** Counters from the transport (see src/transport/types.ts). */
export interface TransportStatsView {
  bytesIn: number
  bytesOut: number
  messagesIn: number
  messagesOut: number
  rejected: number
  connectedPeers: number
}

/** The answer to POST /v1/leave. */
export interface LeaveView {
  left: true
  id: string
  name: string
}

/** GET /v1/health (no authentication). */
export interface HealthView {
  ok: true
  version: string
}

/** The body of every error answer. */
export interface ApiErrorBody {
  error: { code: string; message: string; hint?: string | undefined }
}

/**
 * What the API server needs from the peer. The composition root (src/peer/agent.ts)
 * implements it; tests use a fake.
 */
export interface PeerApi {
  status(): StatusView
  nodes(): NodeView[]
  /** Get out of the voter set (bounded wait), broadcast "left", then stop the agent soon after the answer is sent. */
  leave(): Promise<LeaveView>
  /** Voters and learners. */
  voters(): Promise<VoterView[]>
  /** Remove a voter or learner by name or id, through the log (or forced locally). */
  removeVoter(nameOrId: string, opts: { force: boolean }): Promise<RemoveVoterView>
  /** Debug only: propose `count` entries at the leader and time them (absent unless enabled). */
  debugPropose?(count: number, window: number): Promise<DebugProposeView>
}

const State = z.enum(['alive', 'suspect', 'dead', 'left'])
const Labels = z.record(z.string(), z.string())

/** Checks a NodeView from the wire (unknown extra fields are kept). */
export const NodeViewSchema: z.ZodType<NodeView> = z.looseObject({
  id: z.string(),
  name: z.string(),
  address: z.string(),
  state: State,
  labels: Labels,
  incarnation: z.number(),
  since: z.string(),
  self: z.boolean(),
})

/** Checks a StatusView from the wire (unknown extra fields are kept). */
export const StatusViewSchema: z.ZodType<StatusView> = z.looseObject({
  id: z.string(),
  name: z.string(),
  clusterId: z.string(),
  address: z.string(),
  labels: Labels,
  incarnation: z.number(),
  members: z.looseObject({ alive: z.number(), suspect: z.number(), dead: z.number(), left: z.number(), total: z.number() }),
  startedAt: z.string(),
  uptimeSeconds: z.number(),
  version: z.string(),
  pid: z.number(),
  leader: z.string().nullable(),
  leaderId: z.string().nullable(),
  term: z.number(),
  role: z.enum(['leader', 'follower', 'candidate', 'pre-candidate', 'learner']),
  commitIndex: z.number(),
  appliedIndex: z.number(),
})

/** Checks a VoterView from the wire. */
export const VoterViewSchema: z.ZodType<VoterView> = z.looseObject({
  id: z.string(),
  name: z.string().nullable(),
  role: z.enum(['voter', 'learner']),
  match: z.number().nullable(),
  health: z.enum(['alive', 'suspect', 'dead', 'left', 'unknown']),
  leader: z.boolean(),
  self: z.boolean(),
})

export const RemoveVoterViewSchema: z.ZodType<RemoveVoterView> = z.looseObject({ removed: z.literal(true), id: z.string(), name: z.string().nullable(), forced: z.boolean() })

export const DebugProposeViewSchema: z.ZodType<DebugProposeView> = z.looseObject({
  count: z.number(),
  term: z.number(),
  firstIndex: z.number(),
  lastIndex: z.number(),
  elapsedMs: z.number(),
  latenciesMs: z.array(z.number()),
  memoryMb: z.object({ rss: z.number(), heapUsed: z.number(), heapTotal: z.number(), external: z.number() }).optional(),
})

/** The body of POST /v1/voters/remove. */
export const RemoveVoterRequestSchema = z.object({ name: z.string().min(1).max(256), force: z.boolean().optional() })

/** The body of POST /v1/debug/propose. */
export const DebugProposeRequestSchema = z.object({ count: z.number().int().min(1).max(100_000).optional(), window: z.number().int().min(1).max(4096).optional() })

export const LeaveViewSchema: z.ZodType<LeaveView> = z.looseObject({ left: z.literal(true), id: z.string(), name: z.string() })

export const HealthViewSchema: z.ZodType<HealthView> = z.looseObject({ ok: z.literal(true), version: z.string() })

export const ApiErrorBodySchema: z.ZodType<ApiErrorBody> = z.object({
  error: z.object({ code: z.string(), message: z.string(), hint: z.string().optional() }),
})
