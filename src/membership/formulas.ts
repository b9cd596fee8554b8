/**
 * Pure timing formulas for SWIM with the Lifeguard extensions, in the style of hashicorp/memberlist.
 * No clocks, no randomness: every input is an argument.
 */
import type { MembershipConfig } from './types.ts'

/** The shortest and longest suspicion timeouts (ms) for a cluster of `n` live members. */
export interface SuspicionBounds {
  min: number
  max: number
}

/**
 * Lifeguard suspicion bounds: min = suspicionMult × max(1, log10(n)) × probeInterval and
 * max = suspicionMaxMult × min. `n` counts the live (alive or suspect) members, self included.
 */
export function suspicionBounds(n: number, config: MembershipConfig): SuspicionBounds {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)))
  const min = Math.round(config.suspicionMult * nodeScale * config.probeIntervalMs)
  const max = Math.round(Math.max(1, config.suspicionMaxMult) * min)
  return { min, max }
}

/**
 * How many independent confirmations a suspicion waits for (Lifeguard's k = suspicionMult − 2).
 * As in memberlist, a cluster too small to supply them (n − 2 < k) expects none, so its
 * suspicions run for the shortest timeout straight away.
 */
export function expectedConfirmations(n: number, config: MembershipConfig): number {
  const k = Math.max(0, config.suspicionMult - 2)
  return n - 2 < k ? 0 : k
}

/**
 * The suspicion timeout after `c` confirmations (accusers beyond the first) out of `k` expected:
 * max − (max − min) · log(c + 1) / log(k + 1), never below min. With k = 0 it is min.
 */
export function suspicionTimeout(c: number, k: number, bounds: SuspicionBounds): number {
  const { min, max } = bounds
  if (k < 1) return min
  const frac = Math.log(Math.max(0, c) + 1) / Math.log(k + 1)
  const t = Math.floor(max - (max - min) * frac)
  return Math.max(min, t)
}

/** Lifeguard local health: a probe interval or timeout scaled by (awareness + 1). */
export function scaleByAwareness(ms: number, awareness: number): number {
  return ms * (Math.max(0, awareness) + 1)
}

/** Clamp an awareness score into [0, awarenessMax − 1] (the multiplier is score + 1 ≤ awarenessMax). */
export function clampAwareness(score: number, awarenessMax: number): number {
  return Math.min(Math.max(0, awarenessMax - 1), Math.max(0, score))
}

/**
 * Push-pull interval scaled to the cluster size, as memberlist does: unchanged up to 32 members,
 * then one more multiple of the base interval for each doubling, so full-state traffic per peer
 * grows about logarithmically instead of linearly.
 */
export function pushPullInterval(baseMs: number, n: number): number {
  const threshold = 32
  if (n <= threshold) return baseMs
  const mult = Math.ceil(Math.log2(n) - Math.log2(threshold)) + 1
  return baseMs * mult
}

/**
 * How long a relay waits for the target's ack before it sends the requester a nack: half the
 * probe timeout. The requester's indirect window is probeInterval − probeTimeout (100 ms by
 * default) and must hold the ping-req, this wait and the nack's way back, or a healthy requester
 * would miss nacks and raise its awareness (memberlist's 80 % fits its 1 s / 500 ms defaults).
 */
export function nackTimeout(probeTimeoutMs: number): number {
  return Math.floor(probeTimeoutMs * 0.5)
}
