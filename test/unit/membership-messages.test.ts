import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checkSender, decodeBroadcast, decodeDirect, LIMITS, MAX_BROADCAST_BYTES, MAX_DIRECT_BYTES } from '../../src/membership/messages.ts'
import type { BroadcastMessage, DirectMessage, MemberRecord, Update } from '../../src/membership/types.ts'
import { encode } from '../../src/transport/codec.ts'

const rec = (id: string, extra: Partial<MemberRecord> = {}): MemberRecord => ({ id, name: id, address: `${id}:7946`, labels: { zone: 'a' }, state: 'alive', incarnation: 0, ...extra })
const bcast = (from: string, updates: Update[]): BroadcastMessage => ({ t: 'updates', from, updates })
const direct = (v: unknown) => decodeDirect(encode(v))
const broadcast = (v: unknown) => decodeBroadcast(encode(v))

// Arbitrary valid messages, for round trips.
const peerId = fc.string({ minLength: 1, maxLength: 60 })
const uint = fc.nat({ max: Number.MAX_SAFE_INTEGER })
const labelKey = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,20}$/)
const labels = fc.dictionary(labelKey, fc.string({ maxLength: 30 }), { maxKeys: 5 })
const update: fc.Arbitrary<Update> = fc.oneof(
  fc.record({ kind: fc.constant('alive' as const), id: peerId, inc: uint, name: fc.string({ maxLength: 64 }), address: fc.string({ maxLength: 100 }), labels }),
  fc.record({ kind: fc.constant('suspect' as const), id: peerId, inc: uint, from: peerId }),
  fc.record({ kind: fc.constant('dead' as const), id: peerId, inc: uint, from: peerId }),
  fc.record({ kind: fc.constant('left' as const), id: peerId, inc: uint }),
)
const record: fc.Arbitrary<MemberRecord> = fc.record({
  id: peerId, name: fc.string({ maxLength: 64 }), address: fc.string({ maxLength: 100 }), labels,
  state: fc.constantFrom('alive' as const, 'suspect' as const, 'dead' as const, 'left' as const), incarnation: uint,
})
const directMsg: fc.Arbitrary<DirectMessage> = fc.oneof(
  fc.record({ t: fc.constantFrom('ping' as const, 'ack' as const, 'nack' as const), seq: uint, from: peerId }),
  fc.record({ t: fc.constant('ping-req' as const), seq: uint, from: peerId, target: peerId, address: fc.string({ maxLength: 100 }) }),
  fc.record({ t: fc.constant('push-pull' as const), from: peerId, reply: fc.boolean(), members: fc.array(record, { maxLength: 10 }) }),
)

describe('membership wire schemas', () => {
  it('round-trips every valid message (property)', () => {
    fc.assert(fc.property(directMsg, (m) => {
      expect(direct(m)).toEqual({ ok: true, value: m })
    }))
    fc.assert(fc.property(peerId, fc.array(update, { minLength: 1, maxLength: 20 }), (from, updates) => {
      expect(broadcast(bcast(from, updates))).toEqual({ ok: true, value: bcast(from, updates) })
    }))
  })

  it('never throws on arbitrary bytes or values (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      expect(typeof decodeDirect(bytes).ok).toBe('boolean')
      expect(typeof decodeBroadcast(bytes).ok).toBe('boolean')
    }))
    fc.assert(fc.property(fc.anything(), (v) => {
      expect(typeof direct(v).ok).toBe('boolean')
      expect(typeof broadcast(v).ok).toBe('boolean')
    }))
  })

  const bad: [string, unknown][] = [
    ['an unknown type', { t: 'pong', seq: 1, from: 'a' }],
    ['a negative seq', { t: 'ping', seq: -1, from: 'a' }],
    ['a fractional seq', { t: 'ping', seq: 1.5, from: 'a' }],
    ['an unsafe integer', { t: 'ack', seq: 2 ** 60, from: 'a' }],
    ['an empty sender', { t: 'ping', seq: 1, from: '' }],
    ['a sender id that is too long', { t: 'ping', seq: 1, from: 'x'.repeat(LIMITS.peerId + 1) }],
    ['a ping-req without address', { t: 'ping-req', seq: 1, from: 'a', target: 'b' }],
    ['an address that is too long', { t: 'ping-req', seq: 1, from: 'a', target: 'b', address: 'h'.repeat(LIMITS.address + 1) }],
    ['a name that is too long', { t: 'push-pull', from: 'a', reply: false, members: [rec('a', { name: 'n'.repeat(LIMITS.name + 1) })] }],
    ['an unknown state', { t: 'push-pull', from: 'a', reply: false, members: [{ ...rec('a'), state: 'zombie' }] }],
    ['too many labels', { t: 'push-pull', from: 'a', reply: false, members: [rec('a', { labels: Object.fromEntries(Array.from({ length: LIMITS.labels + 1 }, (_, i) => [`k${i}`, 'v'])) })] }],
    ['a label key that could pollute prototypes', { t: 'push-pull', from: 'a', reply: false, members: [rec('a', { labels: JSON.parse('{"__proto__":"x"}') as Record<string, string> })] }],
    ['a label value that is too long', { t: 'push-pull', from: 'a', reply: false, members: [rec('a', { labels: { k: 'v'.repeat(LIMITS.labelValue + 1) } })] }],
    ['a non-string label value', { t: 'push-pull', from: 'a', reply: false, members: [rec('a', { labels: { k: 3 } as unknown as Record<string, string> })] }],
    ['too many push-pull rows', { t: 'push-pull', from: 'a', reply: false, members: Array.from({ length: LIMITS.pushPullMembers + 1 }, () => ({ id: 'a', name: '', address: '', labels: {}, state: 'alive', incarnation: 0 })) }],
  ]
  for (const [what, value] of bad) {
    it(`rejects a direct message with ${what}`, () => {
      const d = direct(value)
      expect(d.ok).toBe(false)
    })
  }

  it('rejects malformed broadcasts', () => {
    expect(broadcast({ t: 'updates', from: 'a', updates: [] }).ok).toBe(false)
    expect(broadcast(bcast('a', Array.from({ length: LIMITS.updates + 1 }, () => ({ kind: 'left', id: 'a', inc: 0 })))).ok).toBe(false)
    expect(broadcast(bcast('a', [{ kind: 'suspect', id: 'b', inc: 0 } as unknown as Update])).ok).toBe(false)
    expect(broadcast({ t: 'ping', seq: 1, from: 'a' }).ok).toBe(false)
  })

  it('rejects oversized and empty messages before parsing them', () => {
    expect(decodeDirect(new Uint8Array(MAX_DIRECT_BYTES + 1)).ok).toBe(false)
    expect(decodeBroadcast(new Uint8Array(MAX_BROADCAST_BYTES + 1)).ok).toBe(false)
    expect(decodeDirect(new Uint8Array(0)).ok).toBe(false)
    const r = decodeBroadcast(new Uint8Array(MAX_BROADCAST_BYTES + 1))
    expect(r.ok === false && r.reason).toMatch(/exceeds/)
  })
})

describe('forgery checks', () => {
  it('requires msg.from to be the authenticated sender', () => {
    expect(checkSender('a', { t: 'ping', seq: 1, from: 'a' }).ok).toBe(true)
    expect(checkSender('b', { t: 'ping', seq: 1, from: 'a' }).ok).toBe(false)
    expect(checkSender('b', { t: 'push-pull', from: 'a', reply: true, members: [] }).ok).toBe(false)
    expect(checkSender('b', bcast('a', [{ kind: 'left', id: 'a', inc: 0 }])).ok).toBe(false)
  })

  it('allows alive and left claims only about the publisher itself', () => {
    const alive = (id: string): Update => ({ kind: 'alive', id, inc: 1, name: id, address: '', labels: {} })
    expect(checkSender('a', bcast('a', [alive('a')])).ok).toBe(true)
    expect(checkSender('a', bcast('a', [alive('b')])).ok).toBe(false)
    expect(checkSender('a', bcast('a', [{ kind: 'left', id: 'a', inc: 0 }])).ok).toBe(true)
    expect(checkSender('a', bcast('a', [{ kind: 'left', id: 'b', inc: 0 }])).ok).toBe(false)
  })

  it('allows suspect and dead claims only as the publisher\'s own accusation of another peer', () => {
    expect(checkSender('a', bcast('a', [{ kind: 'suspect', id: 'b', inc: 0, from: 'a' }, { kind: 'dead', id: 'c', inc: 0, from: 'a' }])).ok).toBe(true)
    expect(checkSender('a', bcast('a', [{ kind: 'suspect', id: 'b', inc: 0, from: 'c' }])).ok).toBe(false)
    expect(checkSender('a', bcast('a', [{ kind: 'dead', id: 'b', inc: 0, from: 'c' }])).ok).toBe(false)
    expect(checkSender('a', bcast('a', [{ kind: 'dead', id: 'a', inc: 0, from: 'a' }])).ok).toBe(false)
  })

  it('rejects a whole broadcast if any one claim is forged (property)', () => {
    fc.assert(fc.property(fc.array(update, { minLength: 1, maxLength: 10 }), (updates) => {
      const ok = checkSender('p', bcast('p', updates)).ok
      const each = updates.every((u) => (u.kind === 'alive' || u.kind === 'left' ? u.id === 'p' : u.from === 'p' && u.id !== 'p'))
      expect(ok).toBe(each)
    }))
  })
})
