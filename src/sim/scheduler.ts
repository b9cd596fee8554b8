/**
 * A discrete-event scheduler with a virtual clock, for deterministic simulations. Events at the
 * same time run in the order they were scheduled. Nothing here reads the real clock.
 */

/** A scheduled event that can be cancelled. */
export interface SimTimer {
  cancel(): void
}

interface Event {
  t: number
  seq: number
  fn: () => void
  cancelled: boolean
}

/** A binary min-heap on (t, seq). */
class EventHeap {
  readonly #items: Event[] = []

  get size(): number {
    return this.#items.length
  }

  peek(): Event | undefined {
    return this.#items[0]
  }

  push(e: Event): void {
    const a = this.#items
    a.push(e)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!less(a[i] as Event, a[p] as Event)) break
      swap(a, i, p)
      i = p
    }
  }

  pop(): Event | undefined {
    const a = this.#items
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last !== undefined) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && less(a[l] as Event, a[m] as Event)) m = l
        if (r < a.length && less(a[r] as Event, a[m] as Event)) m = r
        if (m === i) break
        swap(a, i, m)
        i = m
      }
    }
    return top
  }
}

function less(x: Event, y: Event): boolean {
  return x.t < y.t || (x.t === y.t && x.seq < y.seq)
}

function swap(a: Event[], i: number, j: number): void {
  const tmp = a[i] as Event
  a[i] = a[j] as Event
  a[j] = tmp
}

/** The simulation's clock and event queue. */
export class Scheduler {
  #now: number
  #seq = 0
  readonly #heap = new EventHeap()

  constructor(start = 0) {
    this.#now = start
  }

  /** The virtual time (ms). */
  now(): number {
    return this.#now
  }

  /** Run `fn` at virtual time `t` (not before now). */
  at(t: number, fn: () => void): SimTimer {
    const e: Event = { t: Math.max(t, this.#now), seq: this.#seq++, fn, cancelled: false }
    this.#heap.push(e)
    return { cancel: () => { e.cancelled = true } }
  }

  /** Run `fn` after `dt` ms of virtual time. */
  after(dt: number, fn: () => void): SimTimer {
    return this.at(this.#now + Math.max(0, dt), fn)
  }

  /** Run `fn` every `period` ms, first at now + `phase`, until cancelled. */
  every(period: number, fn: () => void, phase = period): SimTimer {
    let cancelled = false
    let current: SimTimer | undefined
    const run = (): void => {
      if (cancelled) return
      fn()
      if (!cancelled) current = this.after(period, run)
    }
    current = this.after(phase, run)
    return {
      cancel: () => {
        cancelled = true
        current?.cancel()
      },
    }
  }

  /** Run the next event, if any. False when the queue is empty. */
  step(): boolean {
    for (;;) {
      const e = this.#heap.pop()
      if (e === undefined) return false
      if (e.cancelled) continue
      this.#now = e.t
      e.fn()
      return true
    }
  }

  /** Run every event up to and including time `t`, then set the clock to `t`. */
  runUntil(t: number): void {
    for (;;) {
      const e = this.#heap.peek()
      if (e === undefined || e.t > t) break
      this.#heap.pop()
      if (e.cancelled) continue
      this.#now = e.t
      e.fn()
    }
    if (t > this.#now) this.#now = t
  }

  /** Run for `dt` ms of virtual time. */
  runFor(dt: number): void {
    this.runUntil(this.#now + dt)
  }

  /** Events still queued (cancelled ones included until they are reached). */
  pending(): number {
    return this.#heap.size
  }
}
