import { describe, expect, it } from 'vitest'
import { MAX_ENTRIES_PER_MESSAGE } from '../../src/consensus/limits.ts'
import { decodeRaftMessage, encodeRaftMessage } from '../../src/consensus/messages.ts'
import type { RaftMessage } from '../../src/consensus/types.ts'
import { encode } from '../../src/transport/codec.ts'
import { seededRng } from '../../src/core/rng.ts'

const base = { from: 'peer-a', to: 'peer-b', term: 7 }
const entry = { term: 7, index: 12, type: 'normal' as const, data: new Uint8Array([1, 2, 3]) }

const samples: RaftMessage[] = [
  { ...base, type: 'pre-vote', lastIndex: 11, lastTerm: 6, transfer: false },
  { ...base, type: 'vote', lastIndex: 11, lastTerm: 6, transfer: true },
  { ...base, type: 'pre-vote-resp', reject: false },
  { ...base, type: 'vote-resp', reject: true },
  { ...base, type: 'append', prevIndex: 11, prevTerm: 6, entries: [entry, { ...entry, index: 13, type: 'empty', data: new Uint8Array() }], commit: 10 },
  { ...base, type: 'append-resp', index: 11, reject: true, hintIndex: 9, hintTerm: 5 },
  { ...base, type: 'heartbeat', commit: 10 },
  { ...base, type: 'heartbeat-resp' },
  { ...base, type: 'snapshot', snapshot: { index: 40, term: 6, conf: { voters: ['peer-a', 'peer-b'], learners: ['peer-c'] }, data: new Uint8Array([9, 9]) } },
  { ...base, type: 'timeout-now' },
]

/** Compare with byte arrays turned into plain arrays (decoding may yield Buffers). */
const plain = (v: unknown): unknown => {
  if (v instanceof Uint8Array) return { bytes: Array.from(v) }
  if (Array.isArray(v)) return v.map(plain)
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  return v
}

describe('raft: wire messages', () => {
  it('every message type survives encode → decode unchanged', () => {
    expect(new Set(samples.map((m) => m.type)).size).toBe(10)
    for (const m of samples) {
      const d = decodeRaftMessage(encodeRaftMessage(m))
      expect(d.ok, m.type).toBe(true)
      if (d.ok) {
        expect(plain(d.value)).toEqual(plain(m))
        if (d.value.type === 'append') expect(d.value.entries[0]?.data).toBeInstanceOf(Uint8Array)
      }
    }
  })

  it('rejects out-of-bounds and ill-typed fields', () => {
    const bad: unknown[] = [
      { ...base, type: 'heartbeat', commit: -1 },
      { ...base, type: 'heartbeat', commit: 1.5 },
      { ...base, term: 2 ** 60, type: 'heartbeat-resp' },
      { ...base, from: '', type: 'timeout-now' },
      { ...base, from: 'x'.repeat(300), type: 'timeout-now' },
      { ...base, type: 'nonsense' },
      { ...base, type: 'vote', lastIndex: 1, lastTerm: 1 },
      { ...base, type: 'append', prevIndex: 0, prevTerm: 0, commit: 0, entries: Array.from({ length: MAX_ENTRIES_PER_MESSAGE + 1 }, () => entry) },
      { ...base, type: 'append', prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ ...entry, data: 'text' }] },
      { ...base, type: 'append', prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ ...entry, type: 'other' }] },
      { ...base, type: 'append', prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ ...entry, index: 0 }] },
      { ...base, type: 'snapshot', snapshot: { index: 1, term: 1, conf: { voters: 'a' }, data: new Uint8Array() } },
      [1, 2, 3],
      null,
    ]
    for (const v of bad) expect(decodeRaftMessage(encode(v)).ok, JSON.stringify(v)?.slice(0, 80)).toBe(false)
  })

  it('never throws on garbage and enforces the size limit', () => {
    const rng = seededRng(99)
    for (let i = 0; i < 2000; i++) {
      const bytes = new Uint8Array(1 + Math.floor(rng.next() * 64)).map(() => Math.floor(rng.next() * 256))
      expect(() => decodeRaftMessage(bytes)).not.toThrow()
    }
    // Truncations of a valid message.
    const whole = encodeRaftMessage(samples[4] as RaftMessage)
    for (let n = 0; n < whole.length; n++) expect(decodeRaftMessage(whole.subarray(0, n)).ok).toBe(false)
    expect(decodeRaftMessage(whole, whole.length - 1)).toMatchObject({ ok: false })
    expect(decodeRaftMessage(new Uint8Array())).toMatchObject({ ok: false })
  })
})
