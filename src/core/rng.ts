import { randomBytes } from 'node:crypto'

/** A source of randomness. Pure cores take one of these instead of calling Math.random. */
export interface Rng {
  /** A float in [0, 1). */
  next(): number
}

/** An integer in [0, n). */
export function randInt(rng: Rng, n: number): number {
  return Math.floor(rng.next() * n)
}

/** A float in [lo, hi). */
export function randRange(rng: Rng, lo: number, hi: number): number {
  return lo + rng.next() * (hi - lo)
}

/** Fisher-Yates shuffle into a new array. */
export function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const out = items.slice()
  for (let i = out.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1)
    const tmp = out[i] as T
    out[i] = out[j] as T
    out[j] = tmp
  }
  return out
}

/** Up to k distinct items chosen at random. */
export function sample<T>(rng: Rng, items: readonly T[], k: number): T[] {
  return shuffled(rng, items).slice(0, Math.max(0, k))
}

/**
 * A seeded generator (sfc32 seeded through splitmix32). Same seed, same sequence,
 * on every machine: the simulation replays a failing run from its printed seed.
 */
export function seededRng(seed: number): Rng {
  let s = seed >>> 0
  const split = (): number => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = split()
  let b = split()
  let c = split()
  let d = split()
  return {
    next(): number {
      const t = (((a + b) >>> 0) + d) >>> 0
      d = (d + 1) >>> 0
      a = b ^ (b >>> 9)
      b = (c + (c << 3)) >>> 0
      c = ((c << 21) | (c >>> 11)) >>> 0
      c = (c + t) >>> 0
      return t / 4294967296
    },
  }
}

/** Randomness from the operating system, for shells. */
export function systemRng(): Rng {
  let buf = randomBytes(0)
  let off = 0
  return {
    next(): number {
      if (off + 4 > buf.length) {
        buf = randomBytes(4096)
        off = 0
      }
      const v = buf.readUInt32LE(off)
      off += 4
      return v / 4294967296
    },
  }
}
