// Pure: when a peer whose applied state is not known to be current may act on the assignments it
// applied before (docs/agent.md, static stability). No clock or timers here; `now` is passed in.

/** How long without a leader before the last known assignments are used. */
export const LAST_KNOWN_AFTER_MS = 10_000

/**
 * Whether the agent may use the assignments this peer applied before (its own log) while its
 * applied state is not known to be current: only after `afterMs` in which no leader was known (a
 * reboot with no peer reachable). A peer that reaches the cluster catches up first instead, so it
 * never starts again a copy that has moved away meanwhile. `onOpen` is called when it opens.
 */
export function lastKnownGate(leaderKnown: () => boolean, now: () => number, onOpen: () => void, afterMs = LAST_KNOWN_AFTER_MS): () => boolean {
  let since = now()
  let open = false
  return () => {
    const t = now()
    if (leaderKnown()) {
      since = t
      open = false
      return false
    }
    if (!open && t - since >= afterMs) {
      open = true
      onOpen()
    }
    return open
  }
}
