import { createHash } from 'node:crypto'
import { SkeinError } from '../core/errors.ts'

/**
 * The join token: what another host needs to join this cluster. It carries the 32-byte cluster
 * key (the libp2p private-network key), so it is a secret.
 *
 * Format: `skein1-` + base64url(key ‖ first 4 bytes of sha256(key)), no padding: 55 characters.
 * The checksum turns a truncated or mistyped token into a clear error instead of a silent
 * "cannot connect to anyone".
 */
export const TOKEN_PREFIX = 'skein1-'

/** Bytes in a cluster key. */
export const CLUSTER_KEY_BYTES = 32

const CHECKSUM_BYTES = 4
const TOKEN_LENGTH = TOKEN_PREFIX.length + Math.ceil(((CLUSTER_KEY_BYTES + CHECKSUM_BYTES) * 4) / 3)

function checksum(key: Uint8Array): Buffer {
  return createHash('sha256').update(key).digest().subarray(0, CHECKSUM_BYTES)
}

/** The join token for a cluster key. */
export function encodeJoinToken(key: Uint8Array): string {
  if (key.length !== CLUSTER_KEY_BYTES) throw new RangeError(`a cluster key has ${CLUSTER_KEY_BYTES} bytes, not ${key.length}`)
  return TOKEN_PREFIX + Buffer.concat([key, checksum(key)]).toString('base64url')
}

/** The cluster key inside a join token. Throws SkeinError 'bad-token' saying what is wrong. */
export function parseJoinToken(text: string): Uint8Array {
  const hint = 'print it again on a member with `skein token`'
  const t = text.trim()
  if (t === '') throw new SkeinError('bad-token', 'the join token is empty', { hint })
  if (!t.startsWith(TOKEN_PREFIX)) {
    throw new SkeinError('bad-token', `'${preview(t)}' is not a skein join token (it should start with ${TOKEN_PREFIX})`, { hint })
  }
  const body = t.slice(TOKEN_PREFIX.length)
  if (!/^[A-Za-z0-9_-]*$/.test(body)) throw new SkeinError('bad-token', 'the join token has characters that do not belong in it (spaces, quotes or line breaks?)', { hint })
  if (t.length !== TOKEN_LENGTH) {
    throw new SkeinError('bad-token', `the join token has ${t.length} characters, not ${TOKEN_LENGTH}: it was cut short or run together with other text`, { hint })
  }
  const bytes = Buffer.from(body, 'base64url')
  const key = bytes.subarray(0, CLUSTER_KEY_BYTES)
  if (bytes.length !== CLUSTER_KEY_BYTES + CHECKSUM_BYTES || !checksum(key).equals(bytes.subarray(CLUSTER_KEY_BYTES))) {
    throw new SkeinError('bad-token', 'the join token is damaged (its checksum does not match)', { hint })
  }
  return new Uint8Array(key)
}

/** A short, stable, non-secret id of a cluster: the first 12 hex digits of sha256(cluster key). */
export function clusterIdOf(key: Uint8Array): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12)
}

function preview(t: string): string {
  return t.length > 12 ? `${t.slice(0, 12)}…` : t
}
