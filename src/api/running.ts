import { z } from 'zod'

/**
 * The views of `skein drain` / `undrain`, `skein events` and `skein logs` (docs/api.md), and the
 * part of the peer's API that serves them. Views only grow: later versions add fields.
 */

/** The answer of POST /v1/nodes/drain. */
export interface DrainView {
  /** The host's peer id. */
  id: string
  /** The host's node name. */
  name: string
  drained: boolean
}

/** One cluster event: an element of GET /v1/events and of `skein events --json`. */
export interface EventView {
  /** ISO time, as this peer saw it. */
  time: string
  /**
   * What happened. From the agent of every live host: placed, adopted, started, restarted, exited,
   * stopped, removed, failed, engine-down, engine-up (more kinds may come). From the committed log
   * (as the peer answering applied it): assigned, unassigned, drained, undrained. From its
   * membership view: host-alive, host-suspect, host-dead, host-left. `no-answer`: a live host did
   * not answer, so its agent events are missing.
   */
  kind: string
  /** The host concerned (node name), or null. */
  host: string | null
  hostId: string | null
  service: string | null
  slot: number | null
  generation: number | null
  containerId: string | null
  reason: string | null
  /** Pull events (`pulling`, `pulled`, `pull-failed`) only: the image. */
  image?: string
  /** `pulled` only: how long the pull took. */
  durationMs?: number
  /** `pulled` only, when the engine told: bytes downloaded. */
  bytes?: number
}

/** One item of GET /v1/logs: a line of a replica (on any host), or a note (a host that did not answer, …). */
export interface LogItemView {
  service: string
  slot: number
  /** The replica's host (node name); for a note, the host it is about. */
  host: string
  /**
   * `line`: a line of output; `note`: a note of skein in `text` (`slot` -1), e.g. a host that did
   * not answer; `elsewhere`: the replica runs on another host (only from agents before peer queries).
   */
  kind: 'line' | 'note' | 'elsewhere'
  stream: 'stdout' | 'stderr' | null
  /** ISO time of the line, or null. */
  time: string | null
  text: string | null
}

/** Options of a log request. */
export interface LogsOptions {
  tail?: number | undefined
  follow?: boolean
  signal?: AbortSignal
}

/** The running flow's part of the peer API (each absent on peers without it). */
export interface RunningApi {
  /** Drain or undrain a host (node name or peer id), through the leader's log. */
  drain?(host: string, drained: boolean): Promise<DrainView>
  /** The recent events, oldest first. */
  events?(): EventView[] | Promise<EventView[]>
  /** New events as they happen; returns the unsubscribe function (used when followEvents is absent). */
  onEvent?(fn: (e: EventView) => void): () => void
  /** The recent events, then new ones as they come, until `signal` aborts. */
  followEvents?(signal: AbortSignal): AsyncIterable<EventView>
  /** The logs of a service's replicas, from every host that runs one. */
  logs?(service: string, opts: LogsOptions): AsyncIterable<LogItemView>
}

/** Checks a DrainView from the wire. */
export const DrainViewSchema: z.ZodType<DrainView> = z.looseObject({ id: z.string(), name: z.string(), drained: z.boolean() })

/** Checks an EventView from the wire. */
export const EventViewSchema: z.ZodType<EventView> = z.looseObject({
  time: z.string(),
  kind: z.string(),
  host: z.string().nullable(),
  hostId: z.string().nullable(),
  service: z.string().nullable(),
  slot: z.number().nullable(),
  generation: z.number().nullable(),
  containerId: z.string().nullable(),
  reason: z.string().nullable(),
  image: z.string().optional(),
  durationMs: z.number().optional(),
  bytes: z.number().optional(),
})

/** Checks a LogItemView from the wire. */
export const LogItemViewSchema: z.ZodType<LogItemView> = z.looseObject({
  service: z.string(),
  slot: z.number(),
  host: z.string(),
  kind: z.enum(['line', 'note', 'elsewhere']),
  stream: z.enum(['stdout', 'stderr']).nullable(),
  time: z.string().nullable(),
  text: z.string().nullable(),
})

/** The body of POST /v1/nodes/drain. */
export const DrainRequestSchema = z.object({ host: z.string().min(1).max(256), drained: z.boolean() })
