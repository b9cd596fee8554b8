import { z } from 'zod'
import type { MemberState } from '../membership/types.ts'

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
  /** Broadcast "left", then stop the agent soon after the answer is sent. */
  leave(): Promise<LeaveView>
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
})

export const LeaveViewSchema: z.ZodType<LeaveView> = z.looseObject({ left: z.literal(true), id: z.string(), name: z.string() })

export const HealthViewSchema: z.ZodType<HealthView> = z.looseObject({ ok: z.literal(true), version: z.string() })

export const ApiErrorBodySchema: z.ZodType<ApiErrorBody> = z.object({
  error: z.object({ code: z.string(), message: z.string(), hint: z.string().optional() }),
})
