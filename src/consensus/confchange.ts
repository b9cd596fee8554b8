import { MAX_PEER_ID_LENGTH as MAX_ID_LENGTH } from './limits.ts'
import type { ConfChange, ConfState } from './types.ts'

/**
 * Encoding and application of single-server membership changes. A `conf` entry's data is the
 * UTF-8 JSON of a ConfChange; decoding is total (garbage decodes to undefined and is ignored
 * identically by every peer, so configurations never diverge).
 */

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Encode a change for a `conf` entry. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify({ type: change.type, id: change.id }))
}

/** Decode a `conf` entry's data; undefined when it is not a valid change. */
export function decodeConfChange(data: Uint8Array): ConfChange | undefined {
  let raw: unknown
  try {
    raw = JSON.parse(decoder.decode(data))
  } catch {
    return undefined
  }
  if (typeof raw !== 'object' || raw === null) return undefined
  const { type, id } = raw as { type?: unknown; id?: unknown }
  if (type !== 'add-voter' && type !== 'add-learner' && type !== 'remove') return undefined
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) return undefined
  return { type, id }
}

/** The configuration after a change (total: a change that does nothing returns an equal copy). */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  const voters = conf.voters.filter((v) => v !== change.id)
  const learners = conf.learners.filter((l) => l !== change.id)
  if (change.type === 'add-voter') voters.push(change.id)
  if (change.type === 'add-learner') learners.push(change.id)
  voters.sort()
  learners.sort()
  return { voters, learners }
}

/**
 * Why a change may not be proposed against `conf`, or undefined when it may. Refused: changes
 * that do nothing, and removing (or demoting) the last voter.
 */
export function checkConfChange(conf: ConfState, change: ConfChange): string | undefined {
  if (change.id.length === 0 || change.id.length > MAX_ID_LENGTH) return 'bad peer id'
  const isVoter = conf.voters.includes(change.id)
  const isLearner = conf.learners.includes(change.id)
  switch (change.type) {
    case 'add-voter':
      return isVoter ? `${change.id} is already a voter` : undefined
    case 'add-learner':
      if (isLearner) return `${change.id} is already a learner`
      if (isVoter && conf.voters.length === 1) return 'cannot demote the last voter'
      return undefined
    case 'remove':
      if (!isVoter && !isLearner) return `${change.id} is not a member`
      if (isVoter && conf.voters.length === 1) return 'cannot remove the last voter'
      return undefined
  }
}
