// The peer-query protocol: its messages and limits, chunking and reassembly, the merges, the shell
// over an in-memory network (hostile input included), the log follow sessions, and the gathering
// of logs, events, explanations and drains from other peers.
import { afterEach, describe, expect, it } from 'vitest'
import type { EventView, LogItemView } from '../../src/api/running.ts'
import { systemClock } from '../../src/core/clock.ts'
import { SkeinError } from '../../src/core/errors.ts'
import { silentLogger } from '../../src/core/logger.ts'
import {
  AnswerAssembly, BoundedQueue, MAX_ANSWER_PARTS, MAX_LINE_CHARS, MAX_QUERY_MESSAGE_BYTES, MAX_TEXT_CHARS, PEER_QUERY_PROTOCOL, SeqRing, chunkAnswer, chunkLogsAnswer,
  decodeQueryMessage, encodeQueryMessage, logToWire, logWireBytes, mergeEvents, mergeLogItems, nextCounter, randomCounter, type Answer, type Query,
} from '../../src/peer/query.ts'
import { clusterEvents, createExplainSource, drainViaLeader, explainFromItems, explainToItems, followClusterEvents, type ClusterEventContext } from '../../src/peer/query-cluster.ts'
import { MAX_LOG_REOPENS, createLogSessions, hostLogs } from '../../src/peer/query-logs.ts'
import { clusterLogs, type ClusterLogContext } from '../../src/peer/query-logs-gather.ts'
import { attachQueryShell, type QueryShell } from '../../src/peer/query-shell.ts'
import { createFakeRuntime } from '../../src/runtime/fake.ts'
import type { ContainerRuntime, ContainerSpec, LogLine } from '../../src/runtime/types.ts'
import type { Assignment, ObservedReplica } from '../../src/scheduler/types.ts'
import { encode } from '../../src/transport/codec.ts'
import { MemNet } from './consensus-helpers.ts'

const line = (service: string, slot: number, host: string, text: string, time: number | null): LogItemView => ({
  service, slot, host, kind: 'line', stream: 'stdout', time: time === null ? null : new Date(time).toISOString(), text,
})
const event = (kind: string, time: number, host = 'h1'): EventView => ({
  time: new Date(time).toISOString(), kind, host, hostId: host, service: null, slot: null, generation: null, containerId: null, reason: null,
})
const until = async (what: string, fn: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('peer-query messages', () => {
  it('round-trip, and refuse what does not fit the schema or the size limit', () => {
    const q: Query = { k: 'logs', service: 'web', tail: 10, follow: true, session: 3, since: 7 }
    const msg = { t: 'q' as const, from: 'p1', req: 1, q }
    expect(decodeQueryMessage(encodeQueryMessage(msg))).toEqual({ ok: true, value: msg })
    const bad: unknown[] = [
      { t: 'q', from: 'p1', req: 1, q: { k: 'nope' } },
      { t: 'q', from: 'p1', req: -1, q: { k: 'explain' } },
      { t: 'q', from: '', req: 1, q: { k: 'explain' } },
      { t: 'q', from: 'p1', req: 1, q: { k: 'logs', service: 'web', tail: 1_000_000, follow: false, session: 0, since: 0 } },
      { t: 'a', from: 'p1', req: 1, part: MAX_ANSWER_PARTS, last: true, a: { k: 'ok', items: [] } },
      { t: 'a', from: 'p1', req: 1, part: 0, last: true, a: { k: 'logs', next: 0, items: [{ ...logToWire(line('web', 0, 'h1', 'x', 0)), text: 'x'.repeat(MAX_LINE_CHARS + 100) }] } },
      { t: 'e', from: 'p1', req: 1, code: '', message: 'x' },
    ]
    for (const b of bad) expect(decodeQueryMessage(encode(b)).ok, JSON.stringify(b).slice(0, 80)).toBe(false)
    expect(decodeQueryMessage(new Uint8Array(MAX_QUERY_MESSAGE_BYTES + 1))).toMatchObject({ ok: false, reason: expect.stringMatching(/exceeds the limit/) })
    expect(decodeQueryMessage(new Uint8Array([0xc1, 0xc1])).ok).toBe(false)
  })

  it('cut long lines on the way out', () => {
    const w = logToWire(line('web', 0, 'h1', 'y'.repeat(MAX_LINE_CHARS * 2), 0))
    expect(w.text?.length).toBeLessThanOrEqual(MAX_LINE_CHARS + 16)
    expect(w.text).toMatch(/…\[cut\]$/)
  })
})

describe('chunking answers', () => {
  const big = (n: number, size: number): Answer => ({ k: 'logs', next: n, items: Array.from({ length: n }, (_, i) => logToWire(line('web', i % 3, 'h1', `${i} ${'z'.repeat(size)}`, i))) })

  it('splits under the size limit and reassembles in order, whatever order the parts come in', () => {
    const answer = big(3000, 400)
    const { parts, dropped } = chunkAnswer(answer)
    expect(dropped).toBe(0)
    expect(parts.length).toBeGreaterThan(3)
    for (const [i, p] of parts.entries()) {
      const bytes = encodeQueryMessage({ t: 'a', from: 'x'.repeat(60), req: 2 ** 40, part: i, last: i === parts.length - 1, a: p })
      expect(bytes.byteLength).toBeLessThanOrEqual(MAX_QUERY_MESSAGE_BYTES)
      expect(decodeQueryMessage(bytes).ok).toBe(true)
    }
    const asm = new AnswerAssembly()
    const order = parts.map((_, i) => i).reverse()
    for (const i of order) {
      expect(asm.done).toBe(false)
      expect(asm.add(i, i === parts.length - 1, parts[i] as Answer)).toBe(true)
    }
    expect(asm.done).toBe(true)
    expect(asm.answer()).toEqual(answer)
    expect(asm.add(0, false, parts[0] as Answer)).toBe(false) // a repeated part
  })

  it('keeps the newest items when they do not fit in the most parts', () => {
    const answer = big(3000, 8000)
    const { parts, dropped } = chunkAnswer(answer)
    expect(parts).toHaveLength(MAX_ANSWER_PARTS)
    expect(dropped).toBeGreaterThan(0)
    const kept = parts.flatMap((p) => p.items as { text: string }[])
    expect(kept.length + dropped).toBe(3000)
    expect(kept.at(-1)?.text.startsWith('2999 ')).toBe(true)
  })

  it('ends a logs answer that lost lines with a note saying how many', () => {
    const answer = big(3000, 8000) as Extract<Answer, { k: 'logs' }>
    const { parts, dropped } = chunkLogsAnswer(answer, 'web', 'h1')
    expect(parts).toHaveLength(MAX_ANSWER_PARTS)
    const kept = parts.flatMap((p) => p.items as { kind: string; text: string }[])
    expect(kept.at(-1)).toMatchObject({ kind: 'note', text: `${dropped} lines on h1 did not fit in one answer and were dropped` })
    expect(kept.length - 1 + dropped).toBe(3000)
    expect(kept.at(-2)?.text.startsWith('2999 ')).toBe(true)
    expect(chunkLogsAnswer(big(10, 10) as Extract<Answer, { k: 'logs' }>, 'web', 'h1')).toEqual(chunkAnswer(big(10, 10)))
  })

  it('sizes log items from above: what logWireBytes allows always fits', () => {
    for (const text of ['', 'ascii', 'é€😀'.repeat(2000), 'x'.repeat(MAX_LINE_CHARS * 2)]) {
      const w = logToWire(line('wéb', 2 ** 40, 'hôst', text, 1e12))
      expect(logWireBytes(w)).toBeGreaterThanOrEqual(encode(w).byteLength + 1)
    }
  })

  it('refuses parts that do not belong', () => {
    const asm = new AnswerAssembly()
    expect(asm.add(1, true, { k: 'ok', items: [] })).toBe(true)
    expect(asm.add(2, false, { k: 'ok', items: [] })).toBe(false) // past the last
    expect(asm.add(0, false, { k: 'events', boot: 1, next: 1, items: [] })).toBe(false) // another kind
    expect(asm.add(0, false, { k: 'ok', items: [] })).toBe(true)
    expect(asm.done).toBe(true)
  })
})

describe('merges', () => {
  it('merges log lines by time, keeping each replica’s order; host by host without times; notes last', () => {
    const h1 = [line('web', 0, 'h1', 'a', 10), line('web', 0, 'h1', 'b', 30), line('web', 0, 'h1', 'c', 30)]
    const h2 = [line('web', 1, 'h2', 'x', 20), line('web', 1, 'h2', 'y', 30), { ...line('web', -1, 'h3', 'gone', null), kind: 'note' as const }]
    expect(mergeLogItems([h1, h2]).map((i) => i.text)).toEqual(['a', 'x', 'b', 'c', 'y', 'gone'])
    const untimed = [line('web', 0, 'h1', 'p', null), line('web', 0, 'h1', 'q', null)]
    expect(mergeLogItems([untimed, h2.slice(0, 2)]).map((i) => i.text)).toEqual(['p', 'q', 'x', 'y'])
  })

  it('merges events by time, stable', () => {
    expect(mergeEvents([[event('a', 5), event('b', 9)], [event('c', 1), event('d', 5)]]).map((e) => e.kind)).toEqual(['c', 'a', 'd', 'b'])
  })

  it('numbers ring items and reports what was overwritten', () => {
    const r = new SeqRing<string>(3)
    for (const x of ['a', 'b', 'c', 'd', 'e']) r.push(x)
    expect(r.since(0)).toEqual({ items: ['c', 'd', 'e'], next: 5, dropped: 2 })
    expect(r.since(3, 1)).toEqual({ items: ['d'], next: 4, dropped: 0 })
    expect(r.since(1)).toMatchObject({ items: ['c', 'd', 'e'], dropped: 1 })
    expect(r.since(5)).toEqual({ items: [], next: 5, dropped: 0 })
    const later = new SeqRing<string>(3, 40)
    later.push('z')
    expect(later.since(40)).toEqual({ items: ['z'], next: 41, dropped: 0 })
  })

  it('a ring behaves as the list it stands for, whatever the pushes and asks (against a model)', () => {
    let seed = 7
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n)
    for (let round = 0; round < 50; round++) {
      const cap = 1 + rand(6)
      const maxBytes = rand(3) === 0 ? 5 + rand(20) : Infinity
      const ring = new SeqRing<string>(cap, 0, { maxBytes, sizeOf: (v) => v.length })
      const all: string[] = []
      let kept = 0 // the number of the oldest item kept is all.length - kept + 1
      for (let step = 0; step < 60; step++) {
        if (rand(3) > 0) {
          const v = 'x'.repeat(1 + rand(6)) + all.length
          all.push(v)
          ring.push(v)
          kept = Math.min(kept + 1, cap)
          while (kept > 1 && all.slice(all.length - kept).join('').length > maxBytes) kept--
          expect(ring.size).toBe(kept)
          continue
        }
        const seq = rand(all.length + 2)
        const max = 1 + rand(4)
        const budget = rand(2) === 0 ? Infinity : 1 + rand(20)
        const oldest = all.length - kept + 1
        const from = Math.max(seq + 1, oldest)
        const want: string[] = []
        let bytes = 0
        for (let n = from; n <= all.length && want.length < max; n++) {
          bytes += (all[n - 1] as string).length
          if (want.length > 0 && bytes > budget) break
          want.push(all[n - 1] as string)
        }
        const expected = want.length === 0 ? { items: [], next: seq, dropped: 0 } : { items: want, next: from + want.length - 1, dropped: from - seq - 1 }
        expect(ring.since(seq, max, budget)).toEqual(expected)
      }
    }
  })

  it('rings and queues push in constant time when full (no copy of the whole buffer)', () => {
    const n = 100_000
    const ring = new SeqRing<number>(n)
    const queue = new BoundedQueue<number>(n)
    for (let i = 0; i < n; i++) {
      ring.push(i)
      queue.push(i)
    }
    const t0 = performance.now()
    for (let i = 0; i < n; i++) {
      ring.push(i)
      queue.push(i)
    }
    // A copy of the buffer per push (splice) takes seconds here; a real ring a few milliseconds.
    expect(performance.now() - t0).toBeLessThan(1000)
    expect(ring.since(0)).toMatchObject({ next: 2 * n, dropped: n })
    expect(queue).toMatchObject({ size: n, dropped: n })
    expect(queue.shift()).toBe(0)
    expect(queue.takeAll()).toHaveLength(n - 1)
    expect(queue.shift()).toBeUndefined()
  })

  it('counts request ids and session numbers from a random start, wrapping below 2^53', () => {
    expect(randomCounter(() => 0)).toBe(1)
    expect(randomCounter(() => 0.999999999999)).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER)
    expect(randomCounter(() => 0.5)).toBeGreaterThan(2 ** 51)
    expect(nextCounter(41)).toBe(42)
    expect(nextCounter(Number.MAX_SAFE_INTEGER)).toBe(1)
  })
})

describe('the query shell', () => {
  const shells: QueryShell[] = []
  afterEach(() => {
    for (const s of shells.splice(0)) s.stop()
  })
  const make = (net: MemNet, id: string, handler: (from: string, q: Query) => Answer | Promise<Answer>, opts: { maxPending?: number; maxServing?: number; random?: () => number } = {}): QueryShell => {
    const s = attachQueryShell({ selfId: id, transport: net.transport(id), logger: silentLogger(), addressOf: () => undefined, nameOf: (x) => `name-${x}`, handler, ...opts })
    shells.push(s)
    return s
  }
  const eventsAnswer = (n: number): Answer => ({ k: 'events', boot: 7, next: n, items: Array.from({ length: n }, (_, i) => ({ ...event('started', i), reason: 'r'.repeat(1000) })) })

  it('asks and gets the whole answer, even one of many parts', async () => {
    const net = new MemNet()
    const asked: string[] = []
    make(net, 'b', (from, q) => {
      asked.push(`${from}:${q.k}`)
      return eventsAnswer(1000)
    })
    const a = make(net, 'a', () => ({ k: 'ok', items: [] }))
    const got = await a.ask('b', { k: 'events', since: 0 }, 2000)
    expect(got.items).toHaveLength(1000)
    expect(got.items[999]?.time).toBe(new Date(999).toISOString())
    expect(asked).toEqual(['a:events'])
    expect(net.delivered).toBeGreaterThan(3) // the question and several parts
  })

  it('passes the peer’s error on, with its code and hint', async () => {
    const net = new MemNet()
    make(net, 'b', () => {
      throw new SkeinError('not-leader', 'b is not the leader', { hint: 'ask c' })
    })
    const a = make(net, 'a', () => ({ k: 'ok', items: [] }))
    await expect(a.ask('b', { k: 'explain' }, 2000)).rejects.toMatchObject({ code: 'not-leader', message: 'b is not the leader', hint: 'ask c' })
  })

  it('times out, and fails at once when the peer cannot be reached', async () => {
    const net = new MemNet()
    make(net, 'b', () => new Promise<Answer>(() => {}))
    const a = make(net, 'a', () => ({ k: 'ok', items: [] }))
    await expect(a.ask('b', { k: 'explain' }, 50)).rejects.toMatchObject({ code: 'peer-timeout', message: expect.stringMatching(/name-b did not answer within 50 ms/) })
    expect(a.counters.timeouts).toBe(1)
    await expect(a.ask('nobody', { k: 'explain' }, 5000)).rejects.toMatchObject({ code: 'peer-unreachable' })
  })

  it('bounds the questions in flight and the ones being answered', async () => {
    const net = new MemNet()
    const release: (() => void)[] = []
    make(net, 'b', () => new Promise<Answer>((resolve) => release.push(() => resolve({ k: 'ok', items: [] }))), { maxServing: 2 })
    const a = make(net, 'a', () => ({ k: 'ok', items: [] }), { maxPending: 3 })
    const asks = [0, 1, 2].map(() => a.ask('b', { k: 'cancel', session: 1 }, 2000).then(() => 'ok', (e: SkeinError) => e.code))
    await expect(a.ask('b', { k: 'cancel', session: 1 }, 2000)).rejects.toMatchObject({ code: 'busy' })
    await until('two being answered', () => release.length === 2)
    // The third is refused by b (busy) while two are being answered.
    expect(await asks[2]).toBe('busy')
    for (const r of release) r()
    expect(await Promise.all(asks.slice(0, 2))).toEqual(['ok', 'ok'])
  })

  it('drops malformed, forged and unexpected messages, counts them, and keeps working', async () => {
    const net = new MemNet()
    const b = make(net, 'b', () => ({ k: 'ok', items: [] }))
    const a = make(net, 'a', () => ({ k: 'ok', items: [] }))
    const hostile: [string, Uint8Array][] = [
      ['evil', new Uint8Array([0xc1, 0xc1, 0xc1])],
      ['evil', encode({ t: 'q', from: 'evil', req: 1, q: { k: 'logs', service: '', tail: 1, follow: false, session: 0, since: 0 } })],
      ['evil', new Uint8Array(MAX_QUERY_MESSAGE_BYTES + 10)],
      ['evil', encode({ t: 'q', from: 'a', req: 1, q: { k: 'explain' } })], // forged sender
      ['evil', encode({ t: 'a', from: 'evil', req: 999, part: 0, last: true, a: { k: 'ok', items: [] } })], // no such question
      ['evil', encode({ t: 'e', from: 'evil', req: 1, code: 'x', message: 'y' })],
    ]
    for (const [from, data] of hostile) net.inject(from, 'b', PEER_QUERY_PROTOCOL, data)
    expect(b.counters).toMatchObject({ invalid: 3, forged: 1, unexpected: 2 })
    // An answer from another peer than the one asked does not count as the answer.
    const pending = a.ask('b', { k: 'cancel', session: 2 }, 2000)
    net.inject('c', 'a', PEER_QUERY_PROTOCOL, encode({ t: 'a', from: 'c', req: 1, part: 0, last: true, a: { k: 'ok', items: [] } }))
    expect(a.counters.unexpected).toBe(1)
    await expect(pending).resolves.toEqual({ k: 'ok', items: [] })
  })

  it('bounds the busy refusals being sent; past that drops questions unanswered, and counts them', async () => {
    const net = new MemNet()
    const sent: Uint8Array[] = []
    // b's sends never finish (a slow or stalled link): its refusals stay in flight.
    const transport = { ...net.transport('b'), send: (_to: string, _p: string, data: Uint8Array) => (sent.push(data), new Promise<void>(() => {})) }
    const b = attachQueryShell({ selfId: 'b', transport, logger: silentLogger(), addressOf: () => undefined, nameOf: (x) => x, handler: () => ({ k: 'ok', items: [] }), maxServing: 0, maxBusyReplies: 3 })
    shells.push(b)
    for (let req = 1; req <= 10; req++) net.inject('a', 'b', PEER_QUERY_PROTOCOL, encode({ t: 'q', from: 'a', req, q: { k: 'explain' } }))
    await until('the refusals', () => b.counters.refused === 10)
    expect(b.counters).toMatchObject({ refused: 10, refusedSilently: 7 })
    expect(sent.map((d) => decodeQueryMessage(d)).map((m) => m.ok && m.value.t === 'e' && m.value.code)).toEqual(['busy', 'busy', 'busy'])
  })

  it('starts request ids at random: a restarted asker does not take its last run’s late answers', async () => {
    const net = new MemNet()
    const late: (() => void)[] = []
    make(net, 'b', (_from, q) => (q.k === 'events' ? new Promise<Answer>((resolve) => late.push(() => resolve(eventsAnswer(1)))) : { k: 'ok', items: [] }))
    const first = attachQueryShell({ selfId: 'a', transport: net.transport('a'), logger: silentLogger(), addressOf: () => undefined, nameOf: (x) => x, handler: () => ({ k: 'ok', items: [] }), random: () => 0.1 })
    const lost = first.ask('b', { k: 'events', since: 0 }, 5000).catch((e: SkeinError) => e.code)
    await until('b to get the question', () => late.length === 1)
    first.stop()
    expect(await lost).toBe('stopped')
    // The same peer id, a new process: its handler replaces the first one's.
    const again = make(net, 'a', () => ({ k: 'ok', items: [] }), { random: () => 0.6 })
    const asked = again.ask('b', { k: 'cancel', session: 1 }, 5000)
    late[0]?.()
    await expect(asked).resolves.toEqual({ k: 'ok', items: [] })
    await until('the late answer', () => again.counters.unexpected === 1)
  })

  it('an oversized logs answer reaches the asker with a note saying how many lines were dropped', async () => {
    const net = new MemNet()
    const items = Array.from({ length: 3000 }, (_, i) => logToWire(line('web', 0, 'h1', `${i} ${'z'.repeat(8000)}`, i)))
    make(net, 'b', () => ({ k: 'logs', next: 0, items }))
    const a = make(net, 'a', () => ({ k: 'ok', items: [] }))
    const got = await a.ask('b', { k: 'logs', service: 'web', tail: 3000, follow: false, session: 0, since: 0 }, 5000)
    expect(got.items.at(-1)).toMatchObject({ kind: 'note', service: 'web', host: 'name-b', text: expect.stringMatching(/^\d+ lines on name-b did not fit in one answer and were dropped$/) })
    expect(got.items.at(-2)?.text?.startsWith('2999 ')).toBe(true)
  })

  it('refuses an answer of the wrong kind, and fails what is in flight on stop', async () => {
    const net = new MemNet()
    make(net, 'b', () => ({ k: 'ok', items: [] }))
    const a = make(net, 'a', () => ({ k: 'ok', items: [] }))
    await expect(a.ask('b', { k: 'explain' }, 2000)).rejects.toMatchObject({ code: 'bad-answer' })
    make(net, 'c', () => new Promise<Answer>(() => {}))
    const p = a.ask('c', { k: 'explain' }, 5000)
    a.stop()
    await expect(p).rejects.toMatchObject({ code: 'stopped' })
    await expect(a.ask('c', { k: 'explain' }, 5000)).rejects.toMatchObject({ code: 'stopped' })
  })
})

describe('log follow sessions', () => {
  /** A log source whose lines the test pushes; it ends only when aborted. */
  const source = () => {
    const pushed: LogItemView[] = []
    const opened: { service: string; tail: number | undefined; follow: boolean | undefined }[] = []
    let wake: (() => void) | undefined
    return {
      pushed,
      opened,
      push(i: LogItemView) {
        pushed.push(i)
        wake?.()
      },
      async *open(service: string, o: { tail?: number | undefined; follow?: boolean; signal?: AbortSignal }): AsyncGenerator<LogItemView> {
        opened.push({ service, tail: o.tail, follow: o.follow })
        let at = 0
        while (o.signal?.aborted !== true) {
          if (at < pushed.length) {
            yield pushed[at++] as LogItemView
            continue
          }
          if (o.follow !== true) return
          await new Promise<void>((r) => {
            wake = r
            o.signal?.addEventListener('abort', () => r(), { once: true })
          })
        }
      },
    }
  }

  it('answers polls with the lines after the cursor, waiting a little for new ones', async () => {
    const src = source()
    src.push(line('web', 0, 'h2', 'one', 1))
    const s = createLogSessions({ open: src.open, hostName: 'h2', now: () => Date.now(), waitMs: 50 })
    try {
      const q = { k: 'logs' as const, service: 'web', tail: 5, follow: true, session: 1, since: 0 }
      const first = await s.answer('a', q)
      expect(first.items.map((i) => i.text)).toEqual(['one'])
      expect(src.opened).toEqual([{ service: 'web', tail: 5, follow: true }])
      const t0 = Date.now()
      const empty = await s.answer('a', { ...q, since: first.next })
      expect(empty.items).toEqual([])
      expect(Date.now() - t0).toBeGreaterThanOrEqual(40)
      setTimeout(() => src.push(line('web', 0, 'h2', 'two', 2)), 10)
      const second = await s.answer('a', { ...q, since: first.next })
      expect(second.items.map((i) => i.text)).toEqual(['two'])
      expect(s.size()).toBe(1)
      s.cancel('a', 1)
      expect(s.size()).toBe(0)
    } finally {
      s.stop()
    }
  })

  it('bounds sessions, ends idle ones, and tells a lost session it started again', async () => {
    const src = source()
    let now = 0
    const s = createLogSessions({ open: src.open, hostName: 'h2', now: () => now, waitMs: 1, maxSessions: 3, maxPerPeer: 2, idleMs: 300 })
    try {
      const q = (session: number, since = 0) => ({ k: 'logs' as const, service: 'web', tail: 5, follow: true, session, since })
      await s.answer('a', q(1))
      await s.answer('a', q(2))
      await expect(s.answer('a', q(3))).rejects.toMatchObject({ code: 'busy' })
      await s.answer('b', q(1))
      await expect(s.answer('c', q(1))).rejects.toMatchObject({ code: 'busy' })
      expect(s.size()).toBe(3)
      now = 1000
      await until('idle sessions to end', () => s.size() === 0)
      // A poll with a cursor for a session this host no longer has: a note, and no old lines again.
      src.push(line('web', 0, 'h2', 'old', 1))
      const again = await s.answer('a', q(1, 40))
      expect(again.items[0]).toMatchObject({ kind: 'note', text: expect.stringMatching(/started again/) })
      expect(again.next).toBe(41)
      expect(src.opened.at(-1)).toMatchObject({ tail: 0 })
    } finally {
      s.stop()
    }
  })

  it('notes the lines dropped when the reader falls behind', async () => {
    const src = source()
    for (let i = 0; i < 10; i++) src.push(line('web', 0, 'h2', `l${i}`, i))
    const s = createLogSessions({ open: src.open, hostName: 'h2', now: () => Date.now(), waitMs: 1, bufferItems: 4 })
    try {
      const q = { k: 'logs' as const, service: 'web', tail: 10, follow: true, session: 1, since: 0 }
      await s.answer('a', q)
      await new Promise((r) => setTimeout(r, 30)) // the source's lines are all read by then
      const got = await s.answer('a', { ...q, since: 1 })
      expect(got.items[0]).toMatchObject({ kind: 'note', text: expect.stringMatching(/lines on h2 were dropped/) })
      expect(got.items.at(-1)?.text).toBe('l9')
    } finally {
      s.stop()
    }
  })
})

describe('log follow sessions: limits', () => {
  /** A source that yields `lines` (then, following, waits for the abort; once, ends unless `hang`). */
  const fixed = (lines: LogItemView[], hang = false) => {
    const opened: string[] = []
    return {
      opened,
      async *open(service: string, o: { follow?: boolean; signal?: AbortSignal }): AsyncGenerator<LogItemView> {
        opened.push(service)
        yield* lines.filter((l) => l.service === service)
        if (o.follow === true || hang) await new Promise((r) => o.signal?.addEventListener('abort', r, { once: true }))
      },
    }
  }
  const follow = (since: number, service = 'web') => ({ k: 'logs' as const, service, tail: 100_000, follow: true, session: 1, since })
  const once = { k: 'logs' as const, service: 'web', tail: 100_000, follow: false, session: 0, since: 0 }

  it('a poll returns no more than fits in one answer, and its cursor is the last line sent: nothing is lost', async () => {
    // 1000 lines of 8192 three-byte characters: 24 MiB, more than 64 parts of 256 KiB hold.
    const lines = Array.from({ length: 1000 }, (_, i) => line('web', 0, 'h2', `${i} `.padEnd(MAX_LINE_CHARS, '€'), i))
    const s = createLogSessions({ open: fixed(lines).open, hostName: 'h2', now: () => Date.now(), waitMs: 1, bufferBytes: 64 * 1024 * 1024 })
    try {
      const texts: string[] = []
      let since = 0
      for (let poll = 0; poll < 10 && texts.length < 1000; poll++) {
        if (poll === 1) await new Promise((r) => setTimeout(r, 50)) // the first poll opened the session: let it read every line
        const a = await s.answer('a', follow(since))
        expect(chunkAnswer(a).dropped).toBe(0)
        expect(a.items.every((i) => i.kind === 'line')).toBe(true)
        texts.push(...a.items.map((i) => (i.text ?? '').split(' ')[0] as string))
        since = a.next
      }
      expect(texts).toEqual(lines.map((_, i) => String(i)))
      expect(since).toBe(1000)
    } finally {
      s.stop()
    }
  })

  it('keeps a session’s lines cut as sent and bounded by bytes, noting what the reader missed', async () => {
    const lines = Array.from({ length: 10 }, (_, i) => line('web', 0, 'h2', `${i} ${'y'.repeat(100_000)}`, i))
    const s = createLogSessions({ open: fixed(lines).open, hostName: 'h2', now: () => Date.now(), waitMs: 1, bufferBytes: 3 * (MAX_LINE_CHARS + 200) })
    try {
      expect((await s.answer('a', follow(0))).items.map((i) => i.text?.split(' ')[0])).toEqual(['0'])
      await new Promise((r) => setTimeout(r, 50))
      const a = await s.answer('a', follow(1))
      expect(a.items[0]).toMatchObject({ kind: 'note', text: '6 lines on h2 were dropped: the reader fell behind' })
      expect(a.items.slice(1).map((i) => [i.text?.split(' ')[0], i.text?.length])).toEqual([['7', MAX_LINE_CHARS + 6], ['8', MAX_LINE_CHARS + 6], ['9', MAX_LINE_CHARS + 6]])
      expect(a.next).toBe(10)
    } finally {
      s.stop()
    }
  })

  it('a one-off read keeps the newest lines that fit in one answer, with a note for the others', async () => {
    const lines = Array.from({ length: 10 }, (_, i) => line('web', 0, 'h2', `${i} ${'w'.repeat(1000)}`, i))
    const s = createLogSessions({ open: fixed(lines).open, hostName: 'h2', now: () => Date.now(), answerBytes: 3500 })
    const a = await s.answer('a', once)
    expect(a.items.map((i) => (i.kind === 'note' ? i.text : i.text?.split(' ')[0]))).toEqual(['7', '8', '9', '7 older lines on h2 were left out: one answer holds at most 3 KiB of lines'])
  })

  it('a one-off read cut short by its time limit says so, with the lines read by then', async () => {
    const s = createLogSessions({ open: fixed([line('web', 0, 'h2', 'early', 1)], true).open, hostName: 'h2', now: () => Date.now(), onceTimeoutMs: 50 })
    const a = await s.answer('a', once)
    expect(a.items.map((i) => i.text)).toEqual(['early', 'reading the logs on h2 took more than 0.05 s: only the lines read by then are shown'])
  })

  it('a poll of a session of another service (an asker that restarted) opens a new one', async () => {
    const src = fixed([line('web', 0, 'h2', 'web line', 1), line('db', 0, 'h2', 'db line', 2)])
    const s = createLogSessions({ open: src.open, hostName: 'h2', now: () => Date.now(), waitMs: 20 })
    try {
      expect((await s.answer('a', follow(0))).items.map((i) => i.text)).toEqual(['web line'])
      const db = await s.answer('a', follow(1, 'db'))
      expect(src.opened).toEqual(['web', 'db'])
      expect(db.items.map((i) => i.text)).toEqual(['the follow session on h2 started again: lines may be missing'])
      expect(s.size()).toBe(1)
    } finally {
      s.stop()
    }
  })
})

describe('this host’s logs', () => {
  const spec = (name: string): ContainerSpec => ({
    name, image: 'local/busybox:1', command: ['sleep', '3600'], entrypoint: null, env: {}, workingDir: null, user: null, ports: [],
    memoryBytes: null, nanoCpus: null, pidsLimit: null, network: 'bridge', mounts: [], labels: {}, healthcheck: null,
  })
  const row = (slot: number, containerId: string, host = 'p1', startedAt = 1): ObservedReplica => ({
    service: 'web', slot, host, generation: 1, state: 'running', health: 'none', containerId, startedAt, exitCode: null, restarts: 0, streak: 0, streakSince: null, updatedAt: 0,
  })

  it('reads the tail of each replica here, and follows new containers as they appear', async () => {
    const rt = createFakeRuntime({ clock: systemClock })
    const c0 = await rt.create(spec('a'))
    await rt.start(c0)
    rt.emitLog(c0, 'stdout', 'zero-1')
    rt.emitLog(c0, 'stdout', 'zero-2')
    const rows = [row(0, c0), row(1, 'elsewhere', 'p2')]
    const src = { selfId: 'p1', runtime: rt, observed: () => rows, nameOf: (id: string) => (id === 'p1' ? 'h1' : 'h2'), rescanMs: 10 }
    const once: LogItemView[] = []
    for await (const i of hostLogs(src, 'web', { tail: 1 })) once.push(i)
    expect(once.map((i) => `${i.host} ${i.slot} ${i.text}`)).toEqual(['h1 0 zero-2'])

    const abort = new AbortController()
    const got: string[] = []
    const done = (async () => {
      for await (const i of hostLogs(src, 'web', { tail: 0, follow: true, signal: abort.signal })) got.push(`${i.slot} ${i.text}`)
    })()
    const c2 = await rt.create(spec('b'))
    await rt.start(c2)
    rows.push(row(2, c2))
    await new Promise((r) => setTimeout(r, 40))
    rt.emitLog(c0, 'stdout', 'zero-3')
    rt.emitLog(c2, 'stderr', 'two-1')
    await until('both lines', () => got.length === 2)
    abort.abort()
    await done
    expect(got.sort()).toEqual(['0 zero-3', '2 two-1'])
  })
})

describe('this host’s logs: streams that end, reads cut short', () => {
  const row = (startedAt = 1): ObservedReplica => ({
    service: 'web', slot: 0, host: 'p1', generation: 1, state: 'running', health: 'none', containerId: 'c0', startedAt, exitCode: null, restarts: 0, streak: 0, streakSince: null, updatedAt: 0,
  })
  const l = (time: number): LogLine => ({ stream: 'stdout', time, text: `t${time}` })
  /** A runtime whose n-th logs() call yields `plays[n]` (the last one again after), then ends — or with `hold`, waits for the abort. */
  const scripted = (plays: LogLine[][], hold: (call: number) => boolean) => {
    const calls: { tail: number | undefined }[] = []
    const runtime = {
      async *logs(_id: string, o: { tail?: number; signal?: AbortSignal } = {}): AsyncGenerator<LogLine> {
        const n = calls.length
        calls.push({ tail: o.tail })
        yield* plays[Math.min(n, plays.length - 1)] ?? []
        if (hold(n)) await new Promise((r) => o.signal?.addEventListener('abort', r, { once: true }))
      },
    } as unknown as ContainerRuntime
    return { runtime, calls }
  }

  it('opens again the stream of a container that still runs, skipping the lines already shown', async () => {
    const { runtime, calls } = scripted([[l(1), l(2)], [l(1), l(2), l(3)]], (n) => n >= 1)
    const rows = [row()]
    const abort = new AbortController()
    const got: string[] = []
    const done = (async () => {
      for await (const i of hostLogs({ selfId: 'p1', runtime, observed: () => rows, nameOf: () => 'h1', rescanMs: 10 }, 'web', { tail: 5, follow: true, signal: abort.signal })) got.push(i.text ?? '')
    })()
    await until('the line after the reopen', () => got.length === 3)
    abort.abort()
    await done
    expect(got).toEqual(['t1', 't2', 't3'])
    expect(calls).toEqual([{ tail: 5 }, { tail: 200 }])
  })

  it('gives up after a few ends in a row, with a note; a restart of the container reads it again', async () => {
    const { runtime, calls } = scripted([[]], () => false)
    const rows = [row()]
    const abort = new AbortController()
    const got: string[] = []
    const done = (async () => {
      for await (const i of hostLogs({ selfId: 'p1', runtime, observed: () => rows, nameOf: () => 'h1', rescanMs: 2 }, 'web', { tail: 0, follow: true, signal: abort.signal })) got.push(i.text ?? '')
    })()
    await until('the note', () => got.length === 1, 3000)
    expect(calls).toHaveLength(1 + MAX_LOG_REOPENS)
    expect(got).toEqual([`the log stream of web.0 on h1 ended ${MAX_LOG_REOPENS + 1} times in a row: it is read again when the replica restarts`])
    await new Promise((r) => setTimeout(r, 100))
    expect(calls).toHaveLength(1 + MAX_LOG_REOPENS)
    rows[0] = row(2)
    await until('the read after the restart', () => calls.length >= 2 + MAX_LOG_REOPENS)
    abort.abort()
    await done
  })

  it('a one-off read that is aborted still gives the lines it had read', async () => {
    const { runtime } = scripted([[l(1), l(2), l(3)]], () => true)
    const abort = new AbortController()
    const got: string[] = []
    for await (const i of hostLogs({ selfId: 'p1', runtime, observed: () => [row()], nameOf: () => 'h1' }, 'web', { tail: 5, signal: abort.signal })) {
      got.push(i.text ?? '')
      if (got.length === 1) {
        await new Promise((r) => setTimeout(r, 30)) // the others are read meanwhile
        abort.abort()
      }
    }
    expect(got).toEqual(['t1', 't2', 't3'])
  })
})

describe('gathering from every host', () => {
  const assignment = (slot: number, host: string): Assignment => ({ service: 'web', slot, host, generation: 1, revision: 1 }) as Assignment

  it('merges every host’s logs by time; a dead host and a silent one are one note each', async () => {
    const asked: string[] = []
    const ctx: ClusterLogContext = {
      selfId: 'p1',
      nameOf: (id) => id.replace('p', 'h'),
      assignments: () => [assignment(0, 'p1'), assignment(1, 'p2'), assignment(2, 'p3'), assignment(3, 'p4'), assignment(4, 'p3')],
      hostState: (id) => (id === 'p4' ? 'dead' : 'alive'),
      local: async function* () {
        yield line('web', 0, 'h1', 'local', 20)
      },
      ask: (async (to: string, q: Query) => {
        asked.push(`${to}:${q.k}`)
        if (to === 'p3') throw new SkeinError('peer-timeout', 'h3 did not answer within 10 ms')
        return { k: 'logs', next: 0, items: [logToWire(line('web', 1, 'h2', 'remote', 10))] }
      }) as ClusterLogContext['ask'],
      newSession: () => 1,
    }
    const out: LogItemView[] = []
    for await (const i of clusterLogs(ctx, 'web', { tail: 5 })) out.push(i)
    expect(out.map((i) => i.text)).toEqual(['remote', 'local', 'no logs of web.2, web.4 from h3: h3 did not answer within 10 ms', 'no logs of web.3: h4 is dead'])
    expect(asked.sort()).toEqual(['p2:logs', 'p3:logs'])
    await expect(clusterLogs(ctx, 'nope', {}).next()).rejects.toMatchObject({ code: 'unknown-service' })
  })

  it('follows every host, picks up a host that gets a replica later, and cancels its sessions at the end', async () => {
    let rows = [assignment(0, 'p2')]
    const asked: string[] = []
    let n = 0
    const ctx: ClusterLogContext = {
      selfId: 'p1',
      nameOf: (id) => id.replace('p', 'h'),
      assignments: () => rows,
      hostState: () => 'alive',
      local: async function* (_s, o) {
        yield line('web', 1, 'h1', 'local line', null)
        await new Promise((r) => o.signal?.addEventListener('abort', r, { once: true }))
      },
      ask: (async (to: string, q: Query) => {
        asked.push(`${to}:${q.k}`)
        if (q.k === 'cancel') return { k: 'ok', items: [] }
        await new Promise((r) => setTimeout(r, 5))
        if (q.k === 'logs' && q.since === 0) return { k: 'logs', next: 1, items: [logToWire(line('web', 0, 'h2', `remote ${++n}`, null))] }
        return { k: 'logs', next: 1, items: [] }
      }) as ClusterLogContext['ask'],
      newSession: () => 9,
      rescanMs: 10,
    }
    const abort = new AbortController()
    const got: string[] = []
    for await (const i of clusterLogs(ctx, 'web', { tail: 1, follow: true, signal: abort.signal })) {
      got.push(i.text ?? '')
      if (got.length === 1) rows = [assignment(0, 'p2'), assignment(1, 'p1')]
      if (got.length === 2) abort.abort()
    }
    expect(got).toEqual(['remote 1', 'local line'])
    await until('the cancel', () => asked.includes('p2:cancel'))
  })

  it('gathers events from every live host, once per host, with a note for a silent one; follows new ones', async () => {
    const remote = new Map<string, SeqRing<EventView>>([['p2', new SeqRing(100)], ['p3', new SeqRing(100)]])
    remote.get('p2')?.push(event('started', 20, 'h2'))
    const boots = new Map([['p2', 1], ['p3', 1]])
    let silent = true
    const localList = [event('assigned', 10), event('started', 30)]
    const listeners = new Set<(e: EventView) => void>()
    const ctx: ClusterEventContext = {
      local: () => localList,
      onLocal: (fn) => (listeners.add(fn), () => listeners.delete(fn)),
      remoteHosts: () => [{ id: 'p2', name: 'h2' }, { id: 'p3', name: 'h3' }],
      ask: (async (to: string, q: Query) => {
        if (to === 'p3' && silent) throw new SkeinError('peer-timeout', 'h3 did not answer')
        if (q.k !== 'events') throw new Error('unexpected')
        const got = (remote.get(to) as SeqRing<EventView>).since(q.since)
        return { k: 'events', boot: boots.get(to) as number, next: got.next, items: got.items }
      }) as ClusterEventContext['ask'],
      now: () => Date.now(),
      pollMs: 10,
    }
    const all = await clusterEvents(ctx)
    expect(all.map((e) => `${e.kind}@${e.host}`)).toEqual(['assigned@h1', 'started@h2', 'started@h1', 'no-answer@h3'])

    const abort = new AbortController()
    const seen: string[] = []
    const follow = (async () => {
      for await (const e of followClusterEvents(ctx, abort.signal)) seen.push(`${e.kind}@${e.host}`)
    })()
    await until('the first batch', () => seen.length === 4)
    silent = false
    remote.get('p3')?.push(event('exited', 60, 'h3'))
    remote.get('p2')?.push(event('stopped', 61, 'h2'))
    for (const l of listeners) l(event('drained', 62))
    await until('the new events', () => seen.length === 7)
    // h2 restarts: its numbering starts over, and its new events are not missed.
    boots.set('p2', 2)
    const fresh = new SeqRing<EventView>(100)
    fresh.push(event('adopted', 70, 'h2'))
    remote.set('p2', fresh)
    await until('the restarted host’s events', () => seen.length === 8)
    abort.abort()
    await follow
    expect(seen.slice(4).sort()).toEqual(['adopted@h2', 'drained@h1', 'exited@h3', 'stopped@h2'])
    expect(seen.filter((s) => s === 'no-answer@h3')).toHaveLength(1)
  })
})

describe('the leader’s explanation on a follower', () => {
  const empty = { leading: false, term: null, at: null, explain: {}, pending: [] }

  it('asks the leader, caches briefly, and shows nothing when the leader does not answer', async () => {
    let now = 0
    let leader: string | null = 'p9'
    let asks = 0
    let answer = true
    const src = createExplainSource({
      selfId: 'p1',
      local: () => empty,
      leaderId: () => leader,
      ask: (async () => {
        asks++
        if (!answer) throw new SkeinError('peer-timeout', 'no')
        return { k: 'explain', term: 3, items: explainToItems({ explain: { web: '1 of 3 pending: no host' }, pending: [{ service: 'web', slot: 2, kind: 'unschedulable', host: null }] }) }
      }) as never,
      now: () => now,
      freshMs: 1000,
      keepMs: 5000,
    })
    expect(src.current().known).toBe(false)
    await src.refresh()
    expect(src.current()).toMatchObject({ known: true, explain: { web: '1 of 3 pending: no host' } })
    await src.refresh()
    expect(asks).toBe(1)
    now = 2000
    answer = false
    await src.refresh()
    expect(asks).toBe(2)
    expect(src.current().known).toBe(true) // the last answer is still shown for a while
    now = 6000
    expect(src.current().known).toBe(false)
    leader = null
    await src.refresh()
    expect(asks).toBe(2)
  })

  it('cuts a long explanation to what the wire takes, so that the follower shows it', () => {
    const items = explainToItems({ explain: { web: 'x'.repeat(MAX_TEXT_CHARS * 3), db: 'short' }, pending: [] })
    const web = items.find((i) => i.service === 'web')?.explain ?? ''
    expect(web).toHaveLength(MAX_TEXT_CHARS)
    expect(web.endsWith('x…')).toBe(true)
    expect(items.find((i) => i.service === 'db')?.explain).toBe('short')
    const msg = encodeQueryMessage({ t: 'a', from: 'p1', req: 1, part: 0, last: true, a: { k: 'explain', term: 2, items } })
    expect(decodeQueryMessage(msg).ok).toBe(true)
  })

  it('uses its own while it leads, and round-trips the pending list', async () => {
    const own = { leading: true, term: 2, at: 1, explain: { db: 'why' }, pending: [{ service: 'db', slot: -1, kind: 'waiting' as const, host: 'p3' }] }
    const src = createExplainSource({ selfId: 'p1', local: () => own, leaderId: () => 'p1', ask: (() => Promise.reject(new Error('not asked'))) as never, now: () => 0 })
    await src.refresh()
    expect(src.current()).toEqual({ known: true, explain: own.explain, pending: own.pending })
    expect(explainFromItems(explainToItems(own))).toEqual({ known: true, explain: own.explain, pending: own.pending })
  })
})

describe('drain through the leader', () => {
  const host = { id: 'p2', name: 'h2' }
  const opts = { selfId: 'p1', leaderName: (id: string) => id.replace('p', 'h'), timeoutMs: 100 }

  it('forwards to the leader and returns its answer', async () => {
    const asked: string[] = []
    const ask = (async (to: string, q: Query) => {
      asked.push(`${to}:${JSON.stringify(q)}`)
      return { k: 'drain', id: 'p2', name: 'h2', drained: true, items: [] }
    }) as never
    await expect(drainViaLeader(ask, () => 'p3', host, true, opts)).resolves.toEqual({ id: 'p2', name: 'h2', drained: true })
    expect(asked).toEqual(['p3:{"k":"drain","host":"p2","drained":true}'])
  })

  it('follows a leader change, passes the leader’s errors on, and names a silent leader', async () => {
    let leader = 'p3'
    const ask = (async (to: string) => {
      if (to === 'p3') {
        leader = 'p4'
        throw new SkeinError('not-leader', 'h3 is not the leader')
      }
      throw new SkeinError('unknown-host', 'no host is named h2')
    }) as never
    await expect(drainViaLeader(ask, () => leader, host, true, opts)).rejects.toMatchObject({ code: 'unknown-host' })
    const silent = (() => Promise.reject(new SkeinError('peer-timeout', 'h3 did not answer within 100 ms'))) as never
    await expect(drainViaLeader(silent, () => 'p3', host, false, opts)).rejects.toMatchObject({ code: 'leader-unreachable', message: expect.stringMatching(/undrain was forwarded to the leader, h3/) })
    await expect(drainViaLeader(silent, () => null, host, false, opts)).rejects.toMatchObject({ code: 'no-leader' })
  })

  it('says in its own words that the leader it asked stopped leading (not the remote’s, which name peer ids)', async () => {
    const ask = (() => Promise.reject(new SkeinError('not-leader', 'this peer is not the leader; drain through the leader, 12D3KooWFNK1abc'))) as never
    await expect(drainViaLeader(ask, () => 'p3', host, true, opts)).rejects.toMatchObject({
      code: 'not-leader', message: 'h3 stopped leading; retry in a moment', hint: expect.stringMatching(/`skein status` names the new leader/),
    })
    // Leadership keeps moving: after three tries, the last one asked is named.
    let leader = 'p3'
    const moving = (async (to: string) => {
      leader = `p${Number(to.slice(1)) + 1}`
      throw new SkeinError('not-leader', 'no')
    }) as never
    await expect(drainViaLeader(moving, () => leader, host, true, opts)).rejects.toMatchObject({ message: 'h5 stopped leading; retry in a moment' })
  })
})
