// Pure: when a peer whose applied state is not known to be current may act on the assignments it
// applied before (docs/agent.md, static stability). No clock or timers here; `now` is passed in.

/** How long without a leader before the last known assignments are used. */
export const LAST_KNOWN_AFTER_MS = 10_000

/**
 * Whether the agent may use the assignments this peer applied before (its own log) while its
 * applied state is not known to be current: only after `afterMs` in which no leader was known (a
 * reboot with no peer reachable). A peer that reaches the cluster catches up first instead, so it
 * never starts again a copy that has moved away meanwhile. `onOpen` is called when it opens.
 *
 * The gate only sees the leader when it is called, so a stretch without one counts from the first
 * call that finds none (from the start when there was none yet): a leader seen at the call before
 * may have been known until just before this one.
 */
export function lastKnownGate(leaderKnown: () => boolean, now: () => number, onOpen: () => void, afterMs = LAST_KNOWN_AFTER_MS): () => boolean {
  let since = now()
  let seen = false
  let open = false
  return () => {
    const t = now()
    if (leaderKnown()) {
      seen = true
      open = false
      return false
    }
    if (seen) {
      seen = false
      since = t
    }
    if (!open && t - since >= afterMs) {
      open = true
      onOpen()
    }
    return open
  }
}
