import { Packr } from 'msgpackr'
import type { z } from 'zod'

/**
 * msgpackr encoding behind explicit size limits and a schema check. Decoding never throws:
 * it returns a tagged result that the caller logs and counts.
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', moreTypes: false })

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string }

/** What a check of a decoded message's sender says (every protocol's `checkSender`). */
export type SenderCheck = { ok: true } | { ok: false; reason: string }

/** `true` exactly when A and B are the same type: `const _x: Same<z.infer<typeof S>, T> = true` checks a schema at compile time. */
export type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false

export function encode(value: unknown): Uint8Array {
  return packr.pack(value)
}

export function decode<S extends z.ZodType>(schema: S, data: Uint8Array, maxBytes: number): Decoded<z.infer<S>> {
  if (!(data instanceof Uint8Array)) return { ok: false, reason: 'not bytes' }
  if (data.byteLength === 0) return { ok: false, reason: 'empty message' }
  if (data.byteLength > maxBytes) return { ok: false, reason: `message of ${data.byteLength} bytes exceeds the limit of ${maxBytes}` }
  let raw: unknown
  try {
    raw = packr.unpack(data)
  } catch (err) {
    return { ok: false, reason: `not valid msgpack: ${err instanceof Error ? err.message : String(err)}` }
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const first = parsed.error.issues[0]
    const where = first?.path.length ? first.path.join('.') : '(root)'
    return { ok: false, reason: `schema: ${where}: ${first?.message ?? 'invalid'}` }
  }
  return { ok: true, value: parsed.data }
}
