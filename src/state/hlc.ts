/**
 * A hybrid logical clock (Kulkarni et al.): a timestamp is (wall ms, logical counter, node id).
 * `wall` follows the physical clock when it moves forward; `logical` orders events within one
 * millisecond and events that causally follow a timestamp from a clock that runs ahead. The node
 * id breaks the remaining ties, so the order is total. Pure: the physical time is passed in.
 *
 * Drift: a remote timestamp more than `maxDriftMs` ahead of the local physical clock is refused
 * (update() returns false and the clock does not move). Adopting it would drag this clock, and
 * every write it stamps, that far into the future; clamping it would change the remote write's
 * identity. The caller refuses the entry that carried it; anti-entropy offers it again later, and
 * it is accepted once the local clock has come within the bound.
 */

/** A timestamp. `wall` is ms since the epoch (< 2^48), `logical` < 2^16. */
export interface Hlc {
  wall: number
  logical: number
  node: string
}

/** The largest wall time an HLC can carry (2^48 − 1 ms, the year 10889). */
export const MAX_WALL = 2 ** 48 - 1
/** The largest logical counter; past it the clock borrows one millisecond. */
export const MAX_LOGICAL = 0xffff
/** Default bound on how far ahead of the local clock a remote timestamp may be. */
export const DEFAULT_MAX_DRIFT_MS = 60_000

/** Total order: wall, then logical, then node id (code-unit order). Negative, zero or positive. */
export function compareHlc(a: Hlc, b: Hlc): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1
  if (a.node === b.node) return 0
  return a.node < b.node ? -1 : 1
}

/**
 * Compact, sortable text form: 12 hex digits of wall, 4 of logical, `:`, the node id. The
 * string order of encodings is the order of compareHlc (fixed-width prefix, then the node id).
 */
export function encodeHlc(h: Hlc): string {
  return `${h.wall.toString(16).padStart(12, '0')}${h.logical.toString(16).padStart(4, '0')}:${h.node}`
}

const ENCODED = /^([0-9a-f]{12})([0-9a-f]{4}):(.+)$/s

/** Parse encodeHlc's output; undefined if malformed. */
export function decodeHlc(s: string): Hlc | undefined {
  const m = ENCODED.exec(s)
  if (m === null) return undefined
  return { wall: parseInt(m[1] as string, 16), logical: parseInt(m[2] as string, 16), node: m[3] as string }
}

/** Is `h` a well-formed timestamp (integer fields in range, non-empty node)? */
export function isValidHlc(h: Hlc): boolean {
  return Number.isInteger(h.wall) && h.wall >= 0 && h.wall <= MAX_WALL &&
    Number.isInteger(h.logical) && h.logical >= 0 && h.logical <= MAX_LOGICAL && h.node.length > 0
}

/** Options of a clock. */
export interface HlcClockOptions {
  /** Remote timestamps further ahead of the physical clock than this are refused (default 60 s). */
  maxDriftMs?: number
  /** Start at least here (the highest timestamp persisted before a restart). */
  start?: { wall: number; logical: number }
}

/** A node's clock. Every timestamp it issues is greater than every one it issued or accepted before. */
export class HlcClock {
  readonly node: string
  readonly maxDriftMs: number
  #wall: number
  #logical: number

  constructor(node: string, opts: HlcClockOptions = {}) {
    this.node = node
    this.maxDriftMs = opts.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS
    this.#wall = opts.start?.wall ?? 0
    this.#logical = opts.start?.logical ?? 0
  }

  /** The last timestamp issued or accepted (not a new one). */
  peek(): Hlc {
    return { wall: this.#wall, logical: this.#logical, node: this.node }
  }

  /** A new timestamp for a local event at physical time `physicalMs`. */
  now(physicalMs: number): Hlc {
    const pt = clampWall(physicalMs)
    if (pt > this.#wall) {
      this.#wall = pt
      this.#logical = 0
    } else {
      this.#bump()
    }
    return this.peek()
  }

  /**
   * Take a remote timestamp into account (on receiving it), so that later local timestamps
   * follow it. False, with no change, if it is more than maxDriftMs ahead of `physicalMs`.
   */
  update(remote: Hlc, physicalMs: number): boolean {
    const pt = clampWall(physicalMs)
    if (remote.wall > pt + this.maxDriftMs) return false
    const wall = Math.max(this.#wall, remote.wall, pt)
    if (wall === this.#wall && wall === remote.wall) this.#logical = Math.max(this.#logical, remote.logical)
    else if (wall === remote.wall) this.#logical = remote.logical
    else if (wall !== this.#wall) this.#logical = 0
    this.#wall = wall
    // The received event itself is an event here: step past it.
    this.#bump()
    return true
  }

  /** Would update() accept this remote timestamp at `physicalMs`? */
  acceptable(remote: Hlc, physicalMs: number): boolean {
    return remote.wall <= clampWall(physicalMs) + this.maxDriftMs
  }

  #bump(): void {
    if (this.#logical < MAX_LOGICAL) {
      this.#logical++
    } else {
      // Out of logical room within this millisecond: borrow the next one.
      this.#wall = Math.min(MAX_WALL, this.#wall + 1)
      this.#logical = 0
    }
  }
}

function clampWall(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) return 0
  return Math.min(MAX_WALL, Math.floor(ms))
}
