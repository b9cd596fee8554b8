// The pure state of one container's HTTP/TCP health probe, with Docker's HEALTHCHECK semantics:
// the first probe runs `interval` after the container started, the next one `interval` after the
// previous one finished; one success makes it healthy; `retries` failures in a row make it
// unhealthy; failures that start inside the start period do not count while the container has never
// been healthy. No clock and no I/O: the shell (probes.ts) passes the times in and runs the probes.
import type { Healthcheck } from '../model/spec.ts'

/** A health check the agent probes itself (exec/shell checks are the engine's). */
export type ProbeCheck = Extract<Healthcheck, { kind: 'http' | 'tcp' }>

/** The health a probe reports. */
export type ProbeHealth = 'starting' | 'healthy' | 'unhealthy'

/** Timing of a check (the healthcheck's fields). */
export interface ProbeTiming {
  intervalMs: number
  timeoutMs: number
  /** Failures in a row before unhealthy; 0 means Docker's default, 3. */
  retries: number
  startPeriodMs: number
}

/** The outcome of one probe. */
export type ProbeResult = { kind: 'ok' } | { kind: 'fail'; reason: string } | { kind: 'timeout' }

/** One container run's probe state. */
export interface ProbeState {
  health: ProbeHealth
  /** When the container (this run of it) started. */
  startedAt: number
  /** Failures in a row that count (not excused by the start period). */
  failures: number
  /** When the next probe is due. */
  nextAt: number
  /** Start of the probe in flight, or null. */
  inFlightSince: number | null
  /** Why the last probe failed; null after a success or before the first probe. */
  lastReason: string | null
  /** Probes finished. */
  probes: number
}

/** Docker's default when `retries` is 0. */
export const DEFAULT_RETRIES = 3

/** Is this healthcheck one the agent probes? */
export function isProbeCheck(h: Healthcheck | null | undefined): h is ProbeCheck {
  return h !== null && h !== undefined && (h.kind === 'http' || h.kind === 'tcp')
}

/** The retries in force: `retries`, or 3 when it is 0 (as Docker does). */
export function effectiveRetries(t: ProbeTiming): number {
  return t.retries > 0 ? t.retries : DEFAULT_RETRIES
}

/** The state of a container run that started at `startedAt`: starting, first probe one interval later. */
export function initialProbe(t: ProbeTiming, startedAt: number): ProbeState {
  return { health: 'starting', startedAt, failures: 0, nextAt: startedAt + t.intervalMs, inFlightSince: null, lastReason: null, probes: 0 }
}

/** Is a probe due at `now` (and none in flight)? */
export function isDue(s: ProbeState, now: number): boolean {
  return s.inFlightSince === null && now >= s.nextAt
}

/** A probe starts at `now`. */
export function beginProbe(s: ProbeState, now: number): ProbeState {
  return { ...s, inFlightSince: now }
}

/** The text of a failed result. */
export function resultReason(r: ProbeResult, t: ProbeTiming): string | null {
  if (r.kind === 'ok') return null
  return r.kind === 'timeout' ? `timed out after ${t.timeoutMs} ms` : r.reason
}

/** A probe finished at `now` with `r`: the next state (the next probe is due one interval later). */
export function recordProbe(s: ProbeState, t: ProbeTiming, r: ProbeResult, now: number): ProbeState {
  const began = s.inFlightSince ?? now
  const next = { ...s, inFlightSince: null, nextAt: now + t.intervalMs, probes: s.probes + 1 }
  if (r.kind === 'ok') return { ...next, health: 'healthy', failures: 0, lastReason: null }
  next.lastReason = resultReason(r, t)
  // Docker: while the container has never been healthy, failures of probes started within the start period are excused.
  if (s.health === 'starting' && began - s.startedAt < t.startPeriodMs) return next
  next.failures = s.failures + 1
  if (next.failures >= effectiveRetries(t)) next.health = 'unhealthy'
  return next
}
