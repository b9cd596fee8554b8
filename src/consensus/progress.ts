/**
 * Leader-side bookkeeping: the replication progress of each peer with its flow control, and the
 * quorum arithmetic (commit index by majority, vote tallies, check-quorum).
 */

/** The last indexes of appends sent but not yet acknowledged, bounded by a capacity. */
export class Inflights {
  readonly capacity: number
  #items: number[] = []

  constructor(capacity: number) {
    this.capacity = capacity
  }

  add(lastIndex: number): void {
    this.#items.push(lastIndex)
  }

  /** Forget every append up to and including `index` (acknowledged). */
  freeLE(index: number): void {
    let k = 0
    while (k < this.#items.length && (this.#items[k] as number) <= index) k++
    if (k > 0) this.#items = this.#items.slice(k)
  }

  freeFirst(): void {
    this.#items.shift()
  }

  full(): boolean {
    return this.#items.length >= this.capacity
  }

  count(): number {
    return this.#items.length
  }

  reset(): void {
    this.#items = []
  }
}

/**
 * How far one peer's log is known to match the leader's, and how to send it more:
 * - probe: one append at a time until a response tells where the logs agree;
 * - replicate: appends are streamed optimistically, up to the inflight limit;
 * - snapshot: a snapshot is on its way; nothing else is sent until it is acknowledged.
 */
export class Progress {
  match = 0
  next: number
  state: 'probe' | 'replicate' | 'snapshot' = 'probe'
  /** In probe state: an append is out and unanswered. */
  probeSent = false
  /** In snapshot state: the index of the snapshot sent, and ticks since. */
  pendingSnapshot = 0
  snapshotTicks = 0
  /** Leader ticks since this peer last sent anything; check-quorum counts the recent ones. */
  inactiveTicks = 0
  learner: boolean
  readonly inflights: Inflights

  constructor(next: number, learner: boolean, maxInflight: number) {
    this.next = next
    this.learner = learner
    this.inflights = new Inflights(maxInflight)
  }

  #reset(state: Progress['state']): void {
    this.state = state
    this.probeSent = false
    this.pendingSnapshot = 0
    this.snapshotTicks = 0
    this.inflights.reset()
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot
      this.#reset('probe')
      this.next = Math.max(this.match + 1, pending + 1)
    } else {
      this.#reset('probe')
      this.next = this.match + 1
    }
  }

  becomeReplicate(): void {
    this.#reset('replicate')
    this.next = this.match + 1
  }

  becomeSnapshot(index: number): void {
    this.#reset('snapshot')
    this.pendingSnapshot = index
  }

  /** An acknowledgement up to `index`. Returns whether match moved. */
  maybeUpdate(index: number): boolean {
    let updated = false
    if (this.match < index) {
      this.match = index
      this.probeSent = false
      updated = true
    }
    this.next = Math.max(this.next, index + 1)
    return updated
  }

  /**
   * A rejection of the append after `rejected`, with the follower's hint of where the logs may
   * agree. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1)
    this.probeSent = false
    return true
  }

  /** Record that an append with `count` entries ending at `lastIndex` was sent. */
  sentEntries(count: number, lastIndex: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1
        this.inflights.add(lastIndex)
      }
    } else if (this.state === 'probe') {
      this.probeSent = true
    }
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent
      case 'replicate':
        return this.inflights.full()
      case 'snapshot':
        return true
    }
  }
}

/** The number of voters that makes a majority. */
export function quorumSize(voters: number): number {
  return Math.floor(voters / 2) + 1
}

/** The highest index replicated on a majority of voters (0 with no voters). */
export function quorumIndex(voters: readonly string[], matchOf: (id: string) => number): number {
  if (voters.length === 0) return 0
  const matches = voters.map(matchOf).sort((a, b) => b - a)
  return matches[quorumSize(voters.length) - 1] ?? 0
}

/** An election's outcome so far, counting only voters. */
export function voteResult(voters: readonly string[], votes: ReadonlyMap<string, boolean>): 'won' | 'lost' | 'pending' {
  let granted = 0
  let rejected = 0
  for (const v of voters) {
    const vote = votes.get(v)
    if (vote === true) granted++
    else if (vote === false) rejected++
  }
  const q = quorumSize(voters.length)
  if (granted >= q) return 'won'
  if (voters.length - rejected < q) return 'lost'
  return 'pending'
}
