/**
 * A small, fast, non-cryptographic 64-bit hash (two 32-bit lanes, cyrb53-style mixing), for
 * anti-entropy digests. Peers are authenticated cluster members, so collision resistance against
 * an adversary is not needed; accidental collisions are 2^-64-rare. Pure: no node:crypto.
 */

/** A 64-bit hash as two unsigned 32-bit halves. */
export interface Hash64 {
  hi: number
  lo: number
}

const utf8 = new TextEncoder()

/** Bytes of a string in UTF-8. */
export function utf8Bytes(s: string): Uint8Array {
  return utf8.encode(s)
}

/** An incremental hasher: feed bytes, strings and numbers, then take the digest. */
export class Hasher {
  #h1: number
  #h2: number

  constructor(seed = 0) {
    this.#h1 = (0xdeadbeef ^ seed) >>> 0
    this.#h2 = (0x41c6ce57 ^ seed) >>> 0
  }

  /** Feed one byte-sized or word-sized value. */
  word(v: number): this {
    this.#h1 = Math.imul(this.#h1 ^ v, 2654435761)
    this.#h2 = Math.imul(this.#h2 ^ v, 1597334677)
    return this
  }

  /** Feed bytes, then their length (so that concatenations differ). */
  bytes(b: Uint8Array): this {
    let h1 = this.#h1
    let h2 = this.#h2
    for (let i = 0; i < b.length; i++) {
      const v = b[i] as number
      h1 = Math.imul(h1 ^ v, 2654435761)
      h2 = Math.imul(h2 ^ v, 1597334677)
    }
    this.#h1 = h1
    this.#h2 = h2
    return this.word(b.length)
  }

  /** Feed a string (UTF-16 code units, then its length). */
  string(s: string): this {
    for (let i = 0; i < s.length; i++) this.word(s.charCodeAt(i))
    return this.word(s.length)
  }

  /** Feed a non-negative integer below 2^53 (as two 32-bit words). */
  uint(n: number): this {
    return this.word(n >>> 0).word(Math.floor(n / 4294967296) >>> 0)
  }

  digest(): Hash64 {
    let h1 = this.#h1
    let h2 = this.#h2
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507)
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909)
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507)
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909)
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507)
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909)
    return { hi: h1 >>> 0, lo: h2 >>> 0 }
  }
}

/** Hash of a string alone (for bucketing keys). */
export function hashString(s: string, seed = 0): Hash64 {
  return new Hasher(seed).string(s).digest()
}

/** Hash of bytes alone. */
export function hashBytes(b: Uint8Array, seed = 0): Hash64 {
  return new Hasher(seed).bytes(b).digest()
}
