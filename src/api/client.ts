import type { z } from 'zod'
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { Plan, Stack } from '../model/index.ts'
import { ReplicaViewSchema, type ReplicaView } from './replicas.ts'
import { DrainViewSchema, EventViewSchema, LogItemViewSchema, type DrainView, type EventView, type LogItemView } from './running.ts'
import { readSse } from './sse.ts'
import {
  ApiErrorBodySchema,
  ApplyViewSchema,
  DebugBlockViewSchema,
  HistoryEntryViewSchema,
  PlanSchema,
  RemoveServicesViewSchema,
  ScaleViewSchema,
  ServiceDetailViewSchema,
  ServiceViewSchema,
  type ApplyView,
  type DebugBlockView,
  type HistoryEntryView,
  type RemoveServicesView,
  type ScaleView,
  type ServiceDetailView,
  type ServiceView,
  DebugProposeViewSchema,
  HealthViewSchema,
  LeaveViewSchema,
  RemoveVoterViewSchema,
  VoterViewSchema,
  NodeViewSchema,
  StatusViewSchema,
  type DebugProposeView,
  type HealthView,
  type LeaveView,
  type RemoveVoterView,
  type VoterView,
  type NodeView,
  type StatusView,
} from './types.ts'

/** How to reach an agent's API. */
export interface ApiClientOptions {
  /** `host:port` of the API. */
  address: string
  /** The bearer token; without one, authenticated routes answer 'unauthorized'. */
  token?: string | undefined
  /** Per-request timeout in ms (default 5000). */
  timeoutMs?: number
  /**
   * Why this address was chosen, when that is worth saying in an error: e.g. the default address,
   * because the data dir names no running agent.
   */
  origin?: string
}

/** A typed client of the HTTP API. Every failure is a SkeinError with a hint. */
export interface ApiClient {
  readonly address: string
  health(): Promise<HealthView>
  status(): Promise<StatusView>
  nodes(): Promise<NodeView[]>
  /** Ask the agent to leave the cluster and exit. */
  leave(): Promise<LeaveView>
  /** Voters and learners. */
  voters(): Promise<VoterView[]>
  /** Remove a voter or learner by name or id (through the log; `force` without a leader). */
  removeVoter(name: string, opts?: { force?: boolean }): Promise<RemoveVoterView>
  /** Debug only (agents run with --debug-api): propose `count` entries, `window` at a time, and time them. */
  debugPropose(count: number, window?: number): Promise<DebugProposeView>
  /** Live services. */
  services(): Promise<ServiceView[]>
  /** One service in full. */
  service(name: string): Promise<ServiceDetailView>
  /** Replicas of every service, or of one (`skein ps`). */
  replicas(service?: string): Promise<ReplicaView[]>
  /** A service's kept revisions, oldest first. */
  history(name: string): Promise<HistoryEntryView[]>
  /** What applying `stack` would do at this peer. */
  plan(stack: Stack, opts?: { prune?: boolean }): Promise<Plan>
  /** Apply `stack` in one batch (all or nothing). */
  apply(stack: Stack, opts?: { prune?: boolean }): Promise<ApplyView>
  /** Remove services (all or none). */
  removeServices(names: string[]): Promise<RemoveServicesView>
  /** Set replica counts (all or none). */
  scale(changes: { name: string; replicas: number }[]): Promise<ScaleView>
  /** Debug only: drop all traffic with these peers. */
  debugBlock(peers: string[]): Promise<DebugBlockView>
  /** Debug only: unblock these peers (all without a list). */
  debugUnblock(peers?: string[]): Promise<DebugBlockView>
  /** Drain (or undrain) a host by node name or peer id; the peer answering must lead. */
  drain(host: string, drained: boolean): Promise<DrainView>
  /** The recent events of the peer answering, oldest first. */
  events(): Promise<EventView[]>
  /** Recent events, then new ones as they happen, until `signal` aborts (or the agent goes away). */
  followEvents(signal: AbortSignal): AsyncIterable<EventView>
  /** Logs of a service's replicas on the peer answering (`follow`: until `signal` aborts). */
  logs(service: string, opts: { tail?: number | undefined; follow?: boolean; signal?: AbortSignal }): AsyncIterable<LogItemView>
  /** Poll until nothing answers at the address any more; false if still answering after `timeoutMs`. */
  waitGone(timeoutMs: number): Promise<boolean>
}

/** The errno codes anywhere in an error's cause chain (fetch wraps them, sometimes in an AggregateError). */
export function causeCodes(err: unknown, depth = 0): string[] {
  if (typeof err !== 'object' || err === null || depth > 5) return []
  const out: string[] = []
  if ('code' in err && typeof err.code === 'string') out.push(err.code)
  if ('cause' in err) out.push(...causeCodes(err.cause, depth + 1))
  if (err instanceof AggregateError) for (const e of err.errors) out.push(...causeCodes(e, depth + 1))
  return out
}

/** A SkeinError for a request that got no HTTP answer. Exported for tests. */
export function connectError(address: string, err: unknown, timeoutMs: number): SkeinError {
  const codes = causeCodes(err)
  const name = typeof err === 'object' && err !== null && 'name' in err ? err.name : ''
  if (name === 'TimeoutError' || codes.includes('UND_ERR_CONNECT_TIMEOUT') || codes.includes('ETIMEDOUT')) {
    return new SkeinError('agent-timeout', `the skein agent at ${address} did not answer within ${timeoutMs / 1000}s`, { hint: 'it may be overloaded or stuck; check its logs', cause: err })
  }
  const hint = 'start one with `skein agent`, or pass --data-dir/--api'
  if (codes.includes('ECONNREFUSED') || codes.includes('ECONNRESET') || codes.includes('UND_ERR_SOCKET')) {
    return new SkeinError('agent-unreachable', `no skein agent answers at ${address}`, { hint, cause: err })
  }
  if (codes.includes('ENOTFOUND') || codes.includes('EAI_AGAIN')) {
    return new SkeinError('agent-unreachable', `cannot resolve the host of ${address}`, { hint: 'check --api', cause: err })
  }
  if (codes.includes('EHOSTUNREACH') || codes.includes('ENETUNREACH')) {
    return new SkeinError('agent-unreachable', `${address} is unreachable from here`, { hint: 'check --api', cause: err })
  }
  const detail = codes[0] ?? errorMessage(err)
  return new SkeinError('agent-unreachable', `cannot reach the skein agent at ${address} (${detail})`, { hint, cause: err })
}

/** Create a client. No request is made until a method is called. */
export function createApiClient(opts: ApiClientOptions): ApiClient {
  const address = opts.address
  const timeoutMs = opts.timeoutMs ?? 5000
  const base = `http://${address}`

  async function call<T>(method: 'GET' | 'POST', path: string, schema: z.ZodType<T>, timeout = timeoutMs, payload?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
    if (payload !== undefined) headers['content-type'] = 'application/json'
    let res: Response
    try {
      res = await fetch(base + path, { method, headers, signal: AbortSignal.timeout(timeout), ...(payload === undefined ? {} : { body: JSON.stringify(payload) }) })
    } catch (err) {
      const e = connectError(address, err, timeout)
      if (opts.origin !== undefined && e.code === 'agent-unreachable') throw new SkeinError(e.code, e.message, { hint: `${opts.origin}; ${e.hint ?? ''}`.replace(/; $/, ''), cause: err })
      throw e
    }
    let body: unknown
    const text = await res.text().catch(() => '')
    try {
      body = JSON.parse(text)
    } catch {
      body = undefined
    }
    if (res.status === 401) {
      const hint = opts.origin !== undefined ? `${opts.origin}; pass the agent’s --data-dir, or set SKEIN_TOKEN to the contents of its api.token` : 'pass the agent’s --data-dir, or set SKEIN_TOKEN to the contents of its api.token'
      if (opts.token === undefined) throw new SkeinError('unauthorized', `the skein agent at ${address} needs an API token`, { hint })
      throw new SkeinError('unauthorized', `the skein agent at ${address} refused the API token (401)`, { hint })
    }
    if (!res.ok) {
      const e = ApiErrorBodySchema.safeParse(body)
      if (e.success) throw new SkeinError(e.data.error.code, e.data.error.message, e.data.error.hint === undefined ? {} : { hint: e.data.error.hint })
      throw new SkeinError('bad-response', `${method} ${path} at ${address} failed with HTTP ${res.status}`, { hint: 'is that a skein agent?' })
    }
    const parsed = schema.safeParse(body)
    if (!parsed.success) {
      const first = parsed.error.issues[0]
      const where = first?.path.length ? first.path.join('.') : '(root)'
      throw new SkeinError('bad-response', `unexpected answer to ${method} ${path} from ${address} (${where}: ${first?.message ?? 'not JSON'})`, {
        hint: 'is that a skein agent of the same version?',
      })
    }
    return parsed.data
  }

  async function* stream<T>(path: string, schema: z.ZodType<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
    let res: Response
    try {
      res = await fetch(base + path, { headers, ...(signal === undefined ? {} : { signal }) })
    } catch (err) {
      if (signal?.aborted === true) return
      throw connectError(address, err, timeoutMs)
    }
    if (!res.ok || res.body === null) {
      await call('GET', path, schema.array())
      throw new SkeinError('bad-response', `GET ${path} at ${address} failed with HTTP ${res.status}`)
    }
    try {
      for await (const data of readSse(res.body)) {
        const parsed = schema.safeParse(JSON.parse(data))
        if (!parsed.success) throw new SkeinError('bad-response', `unexpected event from ${address} on GET ${path}`, { hint: 'is that a skein agent of the same version?' })
        yield parsed.data
      }
    } catch (err) {
      if (signal?.aborted === true) return
      if (err instanceof SkeinError) throw err
      throw connectError(address, err, timeoutMs)
    }
  }

  const logsPath = (service: string, tail: number | undefined, follow: boolean): string =>
    `/v1/logs?service=${encodeURIComponent(service)}${tail === undefined ? '' : `&tail=${tail}`}${follow ? '&follow=1' : ''}`

  return {
    address,
    drain: (host, drained) => call('POST', '/v1/nodes/drain', DrainViewSchema, Math.max(timeoutMs, 20_000), { host, drained }),
    events: () => call('GET', '/v1/events', EventViewSchema.array()),
    followEvents: (signal) => stream('/v1/events?follow=1', EventViewSchema, signal),
    logs: (service, o) =>
      o.follow === true
        ? stream(logsPath(service, o.tail, true), LogItemViewSchema, o.signal)
        : (async function* () {
            yield* await call('GET', logsPath(service, o.tail, false), LogItemViewSchema.array(), Math.max(timeoutMs, 30_000))
          })(),
    health: () => call('GET', '/v1/health', HealthViewSchema),
    status: () => call('GET', '/v1/status', StatusViewSchema),
    nodes: () => call('GET', '/v1/nodes', NodeViewSchema.array()),
    leave: () => call('POST', '/v1/leave', LeaveViewSchema, Math.max(timeoutMs, 30_000)),
    voters: () => call('GET', '/v1/voters', VoterViewSchema.array()),
    removeVoter: (name, o = {}) => call('POST', '/v1/voters/remove', RemoveVoterViewSchema, Math.max(timeoutMs, 20_000), { name, force: o.force ?? false }),
    debugPropose: (count, window = 1) => call('POST', '/v1/debug/propose', DebugProposeViewSchema, Math.max(timeoutMs, 120_000), { count, window }),
    services: () => call('GET', '/v1/services', ServiceViewSchema.array()),
    service: (name) => call('GET', `/v1/services/${encodeURIComponent(name)}`, ServiceDetailViewSchema),
    replicas: (service) => call('GET', service === undefined ? '/v1/replicas' : `/v1/replicas?service=${encodeURIComponent(service)}`, ReplicaViewSchema.array()),
    history: (name) => call('GET', `/v1/services/${encodeURIComponent(name)}/history`, HistoryEntryViewSchema.array()),
    plan: (stack, o = {}) => call('POST', '/v1/plan', PlanSchema, timeoutMs, { stack, prune: o.prune ?? false }),
    apply: (stack, o = {}) => call('POST', '/v1/apply', ApplyViewSchema, Math.max(timeoutMs, 30_000), { stack, prune: o.prune ?? false }),
    removeServices: (names) => call('POST', '/v1/services/remove', RemoveServicesViewSchema, Math.max(timeoutMs, 30_000), { names }),
    scale: (services) => call('POST', '/v1/services/scale', ScaleViewSchema, Math.max(timeoutMs, 30_000), { services }),
    debugBlock: (peers) => call('POST', '/v1/debug/block', DebugBlockViewSchema, timeoutMs, { peers }),
    debugUnblock: (peers) => call('POST', '/v1/debug/unblock', DebugBlockViewSchema, timeoutMs, peers === undefined ? {} : { peers }),
    async waitGone(limitMs: number): Promise<boolean> {
      const deadline = Date.now() + limitMs
      while (Date.now() < deadline) {
        try {
          await call('GET', '/v1/health', HealthViewSchema, 1000)
        } catch (err) {
          if (err instanceof SkeinError && err.code === 'agent-unreachable') return true
        }
        await new Promise((r) => setTimeout(r, 100))
      }
      return false
    },
  }
}
