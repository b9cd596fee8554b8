/** A source of time in milliseconds. Pure cores never read the clock themselves; shells pass `now` in. */
export interface Clock {
  now(): number
}

/** The wall clock, for shells only. */
export const systemClock: Clock = { now: () => Date.now() }

/** A clock that only moves when told to: for tests and the simulation. */
export class ManualClock implements Clock {
  #t: number
  constructor(start = 0) {
    this.#t = start
  }
  now(): number {
    return this.#t
  }
  advance(ms: number): void {
    if (ms < 0) throw new RangeError('a clock cannot go backwards')
    this.#t += ms
  }
  set(t: number): void {
    if (t < this.#t) throw new RangeError('a clock cannot go backwards')
    this.#t = t
  }
}
