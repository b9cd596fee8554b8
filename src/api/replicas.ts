import { z } from 'zod'

/**
 * One replica: an element of GET /v1/replicas and of `skein ps --json` (docs/api.md). A slot with a
 * committed assignment shows its host and what the host's agent observed; a slot with no
 * assignment is `pending`.
 */
export interface ReplicaView {
  service: string
  slot: number
  /** The host's node name (its peer id if unknown); null while pending with no host. */
  host: string | null
  /** The host's peer id, or null. */
  hostId: string | null
  /** `pending` (no committed assignment), `assigned` (not yet reported by its host), or the observed state (docs/replicas.md). */
  state: 'pending' | 'assigned' | 'preparing' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed' | 'orphaned'
  health: 'none' | 'starting' | 'healthy' | 'unhealthy'
  containerId: string | null
  /** ISO start time of the container, or null. */
  startedAt: string | null
  restarts: number
  exitCode: number | null
  generation: number | null
  /** Why the slot is pending: the leader's explanation (a follower asks the leader), else null. */
  explain: string | null
}

/** Running and desired replica counts of a service (added to GET /v1/services). */
export interface ReplicaCounts {
  running: number
  desired: number
  /** Why replicas are pending: the leader's explanation (a follower asks the leader), else null. */
  explain: string | null
}

/** Checks a ReplicaView from the wire. */
export const ReplicaViewSchema: z.ZodType<ReplicaView> = z.looseObject({
  service: z.string(),
  slot: z.number(),
  host: z.string().nullable(),
  hostId: z.string().nullable(),
  state: z.enum(['pending', 'assigned', 'preparing', 'starting', 'running', 'stopping', 'stopped', 'failed', 'orphaned']),
  health: z.enum(['none', 'starting', 'healthy', 'unhealthy']),
  containerId: z.string().nullable(),
  startedAt: z.string().nullable(),
  restarts: z.number(),
  exitCode: z.number().nullable(),
  generation: z.number().nullable(),
  explain: z.string().nullable(),
})
