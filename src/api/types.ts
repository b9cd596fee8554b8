import { z } from 'zod'
import type { ReplicaView } from './replicas.ts'
import type { RunningApi } from './running.ts'
import type { MemberState } from '../membership/types.ts'
import type { FieldChange, Plan } from '../model/index.ts'
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
  /** Drained (`skein drain`): the scheduler moves its replicas off and places none there. */
  drained: boolean
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
  /** The desired-state replica (absent on agents without it). */
  state?: StateStatusView
}

/** The desired-state part of the status. */
export interface StateStatusView {
  /** `current`, or `joining` while a fresh or long-absent replica catches up. */
  status: 'current' | 'joining'
  /** Live services held. */
  services: number
  /** Entries held, tombstones included. */
  entries: number
  /** The anti-entropy root digest (16 hex digits): equal on two peers ⇔ identical desired state. */
  digest: string
}

/** One service: an element of GET /v1/services and of `skein services --json`. */
export interface ServiceView {
  name: string
  stack: string
  image: string
  mode: 'replicated' | 'global'
  /** The replica count; null for a global service. */
  replicas: number | null
  /** The current revision (set by the writer, the same on every peer). */
  revision: number
  /** ISO time of the current revision (its HLC wall time). */
  updatedAt: string
  /** The node name of the peer that wrote it (its peer id if unknown). */
  writer: string
  /** Replicas whose container runs (committed assignment + observed `running`). */
  running: number
  /** Replicas wanted: the replica count, or for a global service its assigned hosts. */
  desired: number
  /** Why replicas are pending, when the answering peer leads (else null). */
  explain: string | null
}

/** One service in full: GET /v1/services/{name} and `skein inspect --json`. */
export interface ServiceDetailView extends ServiceView {
  /** The writer's peer id. */
  writerId: string
  /** The current revision's hybrid logical clock, as sortable text. */
  hlc: string
  /** The service spec in canonical form (docs/spec.md). */
  spec: Record<string, unknown>
}

/** One kept revision: an element of GET /v1/services/{name}/history (oldest first). */
export interface HistoryEntryView {
  revision: number
  /** ISO time of the write (HLC wall time). */
  time: string
  writer: string
  writerId: string
  /** create (first revision, or after a removal), change, or remove (a tombstone). */
  action: 'create' | 'change' | 'remove'
  image: string | null
  replicas: number | null
  mode: 'replicated' | 'global' | null
  /** Field changes from the previous kept revision (for `change`); empty otherwise. */
  changes: FieldChange[]
  /** True for the revision in force now. */
  current: boolean
}

/** The answer to POST /v1/apply. */
export interface ApplyView {
  /** The plan the agent carried out (computed against its state at the time of the apply). */
  plan: Plan
  /** The writes of the batch, all stored together. */
  applied: { name: string; action: 'create' | 'change' | 'remove'; revision: number }[]
}

/** The answer to POST /v1/services/remove. */
export interface RemoveServicesView {
  removed: { name: string; revision: number }[]
}

/** The answer to POST /v1/services/scale. */
export interface ScaleView {
  scaled: { name: string; from: number; to: number; revision: number; written: boolean }[]
}

/** The answer to POST /v1/debug/block and /v1/debug/unblock (agents run with --debug-api only). */
export interface DebugBlockView {
  blocked: string[]
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
export interface PeerApi extends RunningApi {
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
  /** Live services (absent on agents without desired state). */
  services?(): ServiceView[] | Promise<ServiceView[]>
  /** One service; throws SkeinError 'unknown-service'. */
  service?(name: string): ServiceDetailView
  /** A service's kept revisions, oldest first; throws SkeinError 'unknown-service'. */
  history?(name: string): HistoryEntryView[]
  /** The plan of applying a stack (the body of POST /v1/plan, unchecked: the peer validates it). */
  plan?(stack: unknown, prune: boolean): Plan
  /** Plan and apply a stack in one batch (all or nothing). */
  apply?(stack: unknown, prune: boolean): Promise<ApplyView>
  /** Remove services (tombstones), all or none. */
  removeServices?(names: string[]): Promise<RemoveServicesView>
  /** Set replica counts, all or none. */
  scale?(changes: { name: string; replicas: number }[]): Promise<ScaleView>
  /** Replicas of every service, or of one (`skein ps`). */
  replicas?(service: string | undefined): ReplicaView[] | Promise<ReplicaView[]>
  /** Debug only: drop all traffic with these peers (absent unless enabled). */
  debugBlock?(peers: string[]): DebugBlockView
  /** Debug only: let traffic with these peers (all without a list) through again. */
  debugUnblock?(peers: string[] | undefined): DebugBlockView
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
  drained: z.boolean().catch(false),
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

const ServiceViewShape = {
  name: z.string(),
  stack: z.string(),
  image: z.string(),
  mode: z.enum(['replicated', 'global']),
  replicas: z.number().nullable(),
  revision: z.number(),
  updatedAt: z.string(),
  writer: z.string(),
  running: z.number(),
  desired: z.number(),
  explain: z.string().nullable(),
}

/** Checks a ServiceView from the wire. */
export const ServiceViewSchema: z.ZodType<ServiceView> = z.looseObject(ServiceViewShape)

/** Checks a ServiceDetailView from the wire. */
export const ServiceDetailViewSchema: z.ZodType<ServiceDetailView> = z.looseObject({ ...ServiceViewShape, writerId: z.string(), hlc: z.string(), spec: z.record(z.string(), z.unknown()) })

const FieldChangeSchema = z.looseObject({ path: z.string(), from: z.unknown().optional(), to: z.unknown().optional() })

/** Checks a HistoryEntryView from the wire. */
export const HistoryEntryViewSchema: z.ZodType<HistoryEntryView> = z.looseObject({
  revision: z.number(),
  time: z.string(),
  writer: z.string(),
  writerId: z.string(),
  action: z.enum(['create', 'change', 'remove']),
  image: z.string().nullable(),
  replicas: z.number().nullable(),
  mode: z.enum(['replicated', 'global']).nullable(),
  changes: z.array(FieldChangeSchema),
  current: z.boolean(),
})

const SpecList = z.array(z.record(z.string(), z.unknown()))

/** Checks a Plan from the wire (the services in it are canonical specs). */
export const PlanSchema = z.looseObject({
  stack: z.string(),
  create: SpecList,
  change: z.array(z.looseObject({ name: z.string(), diff: z.array(FieldChangeSchema), from: z.record(z.string(), z.unknown()), to: z.record(z.string(), z.unknown()) })),
  remove: SpecList,
  unchanged: z.array(z.string()),
  absent: z.array(z.string()),
  conflicts: z.array(z.looseObject({ name: z.string(), stack: z.string() })),
}) as unknown as z.ZodType<Plan>

export const ApplyViewSchema: z.ZodType<ApplyView> = z.looseObject({
  plan: PlanSchema,
  applied: z.array(z.looseObject({ name: z.string(), action: z.enum(['create', 'change', 'remove']), revision: z.number() })),
})

export const RemoveServicesViewSchema: z.ZodType<RemoveServicesView> = z.looseObject({ removed: z.array(z.looseObject({ name: z.string(), revision: z.number() })) })

export const ScaleViewSchema: z.ZodType<ScaleView> = z.looseObject({
  scaled: z.array(z.looseObject({ name: z.string(), from: z.number(), to: z.number(), revision: z.number(), written: z.boolean() })),
})

export const DebugBlockViewSchema: z.ZodType<DebugBlockView> = z.looseObject({ blocked: z.array(z.string()) })

const ServiceName = z.string().min(1).max(256)

/** The body of POST /v1/plan and POST /v1/apply: a parsed stack (the peer validates every service again). */
export const ApplyRequestSchema = z.object({
  stack: z.looseObject({ name: z.string().min(1).max(63), services: z.array(z.unknown()).max(1000) }),
  prune: z.boolean().optional(),
})

/** The body of POST /v1/services/remove. */
export const RemoveServicesRequestSchema = z.object({ names: z.array(ServiceName).min(1).max(1000) })

/** The body of POST /v1/services/scale. */
export const ScaleRequestSchema = z.object({ services: z.array(z.object({ name: ServiceName, replicas: z.number().int().min(0).max(1_000_000) })).min(1).max(1000) })

/** The body of POST /v1/debug/block and /v1/debug/unblock. */
export const DebugBlockRequestSchema = z.object({ peers: z.array(z.string().min(1).max(128)).max(1000).optional() })
