import { SkeinError } from '../core/errors.ts'

/**
 * Raft timing: the shell's tick period and the core's election and heartbeat timeouts in ticks.
 * A follower that hears nothing from a leader campaigns after a random
 * [electionTicks, 2 × electionTicks) ticks; the leader sends heartbeats every heartbeatTicks.
 */
export interface RaftTiming {
  tickMs: number
  electionTicks: number
  heartbeatTicks: number
}

/** Named presets: `lan` (the default) and `wan` (links with round trips up to ~200 ms). */
export const RAFT_TIMING_PRESETS = {
  /**
   * 50 ms ticks: heartbeat 100 ms, election timeout 450–900 ms. (9 rather than the core's
   * default 10 ticks: with 3 voters a new leader is then agreed ~0.5 s after a crash, p50.)
   */
  lan: { tickMs: 50, electionTicks: 9, heartbeatTicks: 2 },
  /** 100 ms ticks: heartbeat 300 ms, election timeout 2–4 s. */
  wan: { tickMs: 100, electionTicks: 20, heartbeatTicks: 3 },
} as const satisfies Record<string, RaftTiming>

/** A preset name. */
export type RaftTimingPreset = keyof typeof RAFT_TIMING_PRESETS

/** What the agent flags say (undefined: not given). */
export interface RaftTimingFlags {
  preset?: string | undefined
  tickMs?: number | undefined
  electionTicks?: number | undefined
  heartbeatTicks?: number | undefined
}

/**
 * The timing from a preset (default `lan`) with individual overrides. Throws SkeinError
 * 'bad-flag' for an unknown preset, out-of-range values, or a heartbeat not below the election
 * timeout.
 */
export function resolveRaftTiming(flags: RaftTimingFlags = {}): RaftTiming {
  const name = flags.preset ?? 'lan'
  if (!(name in RAFT_TIMING_PRESETS)) {
    throw new SkeinError('bad-flag', `unknown --raft-timing '${name}'`, { hint: `use one of ${Object.keys(RAFT_TIMING_PRESETS).join(', ')}` })
  }
  const base = RAFT_TIMING_PRESETS[name as RaftTimingPreset]
  const t: RaftTiming = {
    tickMs: flags.tickMs ?? base.tickMs,
    electionTicks: flags.electionTicks ?? base.electionTicks,
    heartbeatTicks: flags.heartbeatTicks ?? base.heartbeatTicks,
  }
  const check = (flag: string, v: number, lo: number, hi: number): void => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new SkeinError('bad-flag', `${flag} must be an integer from ${lo} to ${hi}, got ${v}`)
  }
  check('--raft-tick-ms', t.tickMs, 5, 10_000)
  check('--raft-election-ticks', t.electionTicks, 2, 1000)
  check('--raft-heartbeat-ticks', t.heartbeatTicks, 1, 999)
  if (t.heartbeatTicks >= t.electionTicks) {
    throw new SkeinError('bad-flag', `the heartbeat (${t.heartbeatTicks} ticks) must be shorter than the election timeout (${t.electionTicks} ticks)`, {
      hint: 'keep --raft-heartbeat-ticks well below --raft-election-ticks (a fifth of it, or less)',
    })
  }
  return t
}

/** "heartbeat 100 ms, election 500–1000 ms" */
export function describeRaftTiming(t: RaftTiming): string {
  return `tick ${t.tickMs} ms, heartbeat ${t.heartbeatTicks * t.tickMs} ms, election timeout ${t.electionTicks * t.tickMs}–${2 * t.electionTicks * t.tickMs} ms`
}
