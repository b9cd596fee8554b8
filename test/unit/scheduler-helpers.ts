// Builders and a commit/observe loop for the scheduler tests.
import { serviceSpecSchema, type ServiceSpec, type ServiceSpecInput } from '../../src/model/index.ts'
import { applyDecisions, reconcile, type Assignment, type NodeInfo, type ObservedReplica, type SchedulerInput, type SchedulerOutput } from '../../src/scheduler/index.ts'

export const GiB = 1024 ** 3
export const T0 = 1_700_000_000_000

/** A canonical spec from a few fields. */
export function svc(name: string, fields: Partial<ServiceSpecInput> = {}): ServiceSpec {
  return serviceSpecSchema.parse({ stack: 's', name, image: 'nginx', ...fields })
}

/** A host: id `hN` → name `nN` unless given. */
export function node(id: string, fields: Partial<NodeInfo> = {}): NodeInfo {
  return { id, name: id, state: 'alive', labels: {}, capacity: { milliCpu: 4000, memoryBytes: 8 * GiB }, drained: false, since: T0 - 3_600_000, ...fields }
}

/** Hosts h1..hn. */
export function nodes(n: number, fields: Partial<NodeInfo> = {}): NodeInfo[] {
  return Array.from({ length: n }, (_, i) => node(`h${i + 1}`, fields))
}

/** A committed assignment. */
export function asg(service: string, slot: number, host: string, generation = 1): Assignment {
  return { service, slot, host, revision: 0, generation, term: 1, index: 1 }
}

/** An observed replica (running by default). */
export function obs(service: string, slot: number, host: string, generation = 1, fields: Partial<ObservedReplica> = {}): ObservedReplica {
  return {
    service, slot, host, generation, state: 'running', health: 'none', containerId: `c-${service}-${slot}-${host}-${generation}`, startedAt: T0, exitCode: null,
    restarts: 0, streak: 0, streakSince: null, updatedAt: T0, ...fields,
  }
}

/** Running copies for every assignment. */
export function runningFor(assignments: readonly Assignment[]): ObservedReplica[] {
  return assignments.map((a) => obs(a.service, a.slot, a.host, a.generation))
}

/** Input with defaults. */
export function input(fields: Partial<SchedulerInput>): SchedulerInput {
  return { services: [], assignments: [], observed: [], nodes: [], now: T0, ...fields }
}

/** Per host: how many replicas of the service are assigned there (by host id). */
export function perHost(assignments: readonly Assignment[], service: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const a of assignments) if (a.service === service) out[a.host] = (out[a.host] ?? 0) + 1
  return out
}

/** True when a round decides nothing. */
export function quiet(out: SchedulerOutput): boolean {
  return out.place.length === 0 && out.move.length === 0 && out.stop.length === 0
}

/**
 * One simulated round: reconcile, commit, then the agents of reachable hosts act: they stop the
 * copies they were told to stop and run every assignment for their host. Hosts that are not
 * alive/suspect report nothing new (their last report stays).
 */
export function step(state: SchedulerInput, term = 1): { state: SchedulerInput; out: SchedulerOutput } {
  const out = reconcile(state)
  const index = (state.assignments.reduce((m, a) => Math.max(m, a.index), 0) ?? 0) + 1
  const assignments = applyDecisions(state.assignments, out, { term, index })
  const up = new Set(state.nodes.filter((n) => n.state === 'alive' || n.state === 'suspect').map((n) => n.id))
  const claimed = new Set(assignments.map((a) => `${a.service}/${a.slot}/${a.host}/${a.generation}`))
  const observed: ObservedReplica[] = []
  for (const o of state.observed) {
    if (!up.has(o.host)) observed.push(o)
    else if (claimed.has(`${o.service}/${o.slot}/${o.host}/${o.generation}`)) observed.push(o)
  }
  const have = new Set(observed.map((o) => `${o.service}/${o.slot}/${o.host}/${o.generation}`))
  for (const a of assignments) {
    const k = `${a.service}/${a.slot}/${a.host}/${a.generation}`
    if (up.has(a.host) && !have.has(k)) observed.push(obs(a.service, a.slot, a.host, a.generation))
  }
  return { state: { ...state, assignments, observed }, out }
}

/** Run rounds until one is quiet (or the limit); returns the final state and the rounds used. */
export function settle(state: SchedulerInput, limit = 50): { state: SchedulerInput; rounds: number; quiet: boolean } {
  let s = state
  for (let i = 1; i <= limit; i++) {
    const r = step(s)
    s = r.state
    if (quiet(r.out)) return { state: s, rounds: i, quiet: true }
  }
  return { state: s, rounds: limit, quiet: false }
}
