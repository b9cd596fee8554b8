// The observed-replicas table: order/duplication-insensitive merge, per-host ownership, the wire.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { allRows, checkSender, decodeObserved, encodeObserved, mergeObserved, nextVersion, MAX_OBSERVED_BYTES, type ObservedMessage, type ObservedTable } from '../../src/agent/observed.ts'
import { encode } from '../../src/transport/codec.ts'
import type { ObservedReplica } from '../../src/scheduler/types.ts'

const row = (host: string, slot: number, fields: Partial<ObservedReplica> = {}): ObservedReplica => ({
  service: 'web', slot, host, generation: 1, state: 'running', health: 'none', containerId: `c${slot}`, startedAt: 1, exitCode: null,
  restarts: 0, streak: 0, streakSince: null, updatedAt: 5, ...fields,
})

const hosts = ['h1', 'h2', 'h3']
const msgArb: fc.Arbitrary<ObservedMessage> = fc.record({ host: fc.constantFrom(...hosts), version: fc.nat(5), slots: fc.uniqueArray(fc.nat(4), { maxLength: 3 }), restarts: fc.nat(3) })
  .map(({ host, version, slots, restarts }) => ({ from: host, host, version, rows: slots.map((s) => row(host, s, { restarts })) }))

const fold = (msgs: readonly ObservedMessage[]): ObservedTable => msgs.reduce<ObservedTable>((t, m) => mergeObserved(t, m), new Map())
const canon = (t: ObservedTable) => JSON.stringify([...t.entries()].sort(([a], [b]) => a.localeCompare(b)))

describe('observed table', () => {
  it('merge is insensitive to order and duplication', () => {
    fc.assert(fc.property(fc.array(msgArb, { maxLength: 12 }), fc.nat(), (msgs, seed) => {
      const shuffled = [...msgs, ...msgs.slice(0, seed % (msgs.length + 1))]
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = (seed * (i + 7)) % (i + 1)
        const a = shuffled[i], b = shuffled[j]
        if (a !== undefined && b !== undefined) { shuffled[i] = b; shuffled[j] = a }
      }
      expect(canon(fold(shuffled))).toBe(canon(fold(msgs)))
    }))
  })

  it('keeps per host the highest version', () => {
    const t = fold([{ from: 'h1', host: 'h1', version: 2, rows: [row('h1', 0)] }, { from: 'h1', host: 'h1', version: 1, rows: [row('h1', 1)] }])
    expect(allRows(t).map((r) => r.slot)).toEqual([0])
  })

  it('keeps rows of hosts that stopped reporting', () => {
    const t = fold([{ from: 'h1', host: 'h1', version: 1, rows: [row('h1', 0)] }, { from: 'h2', host: 'h2', version: 1, rows: [row('h2', 1)] }])
    expect(allRows(t).map((r) => r.host)).toEqual(['h1', 'h2'])
  })

  it('a host cannot write another host\'s rows', () => {
    fc.assert(fc.property(fc.constantFrom(...hosts), fc.constantFrom(...hosts), fc.constantFrom(...hosts), fc.constantFrom(...hosts), (sender, from, host, rowHost) => {
      const msg: ObservedMessage = { from, host, version: 1, rows: [row(rowHost, 0)] }
      expect(checkSender(sender, msg).ok).toBe(sender === from && from === host && host === rowHost)
    }))
    // Even past the check, merge files only the host's own rows under it.
    const t = mergeObserved(new Map(), { host: 'h1', version: 1, rows: [row('h1', 0), row('h2', 1)] })
    expect(allRows(t).map((r) => r.host)).toEqual(['h1'])
  })

  it('versions grow and survive a restart through the clock', () => {
    expect(nextVersion(0, 1000)).toBe(1000)
    expect(nextVersion(1000, 1000)).toBe(1001)
    expect(nextVersion(5000, 1000)).toBe(5001)
  })

  it('decodes what it encodes and never throws on garbage', () => {
    const msg: ObservedMessage = { from: 'h1', host: 'h1', version: 3, rows: [row('h1', 0), row('h1', 1, { exitCode: -1, state: 'failed', containerId: null })] }
    expect(decodeObserved(encodeObserved(msg))).toEqual({ ok: true, value: msg })
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => { expect(decodeObserved(bytes).ok).toBe(false) }))
    for (const bad of [{}, { ...msg, version: -1 }, { ...msg, rows: [{ ...row('h1', 0), state: 'zombie' }] }, { ...msg, from: '' }]) {
      expect(decodeObserved(encode(bad)).ok).toBe(false)
    }
    expect(decodeObserved(new Uint8Array(MAX_OBSERVED_BYTES + 1)).ok).toBe(false)
    expect(decodeObserved(encode({ ...msg, rows: Array.from({ length: 2001 }, (_, i) => row('h1', i)) })).ok).toBe(false)
  })
})
