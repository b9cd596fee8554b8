/**
 * The peer-query protocol (`/skein/peer-query/1`, docs/architecture.md): a peer asks another for
 * what only that one has, over one-way direct messages with request ids, as the consensus admin
 * protocol does. A question (`q`) is answered by one or more parts (`a`, in order, the last one
 * flagged) or by an error (`e`). msgpack, checked by zod under a size limit; `from` must be the
 * authenticated sender. Pure: the schemas, the chunking of answers under the size limit, their
 * reassembly, and the merges of what several hosts answered. query-shell.ts does the I/O.
 *
 * Questions:
 * - `drain`: the leader drains or undrains a host (a follower forwards `skein drain`);
 * - `restarting`: the leader commits that the asking peer stops gracefully and will be back
 *   before `untilMs` (a follower's SIGTERM; answered `ok` once committed);
 * - `explain`: the leader's scheduler explanation of pending replicas (`skein ps` on a follower);
 * - `events`: this host's agent events after a cursor (`skein events` gathers every host's);
 * - `logs`: the output of a service's replicas on this host, once or as a follow session polled
 *   with a cursor (`skein logs [-f]` gathers every host's); `cancel` ends a session.
 */
import { z } from 'zod'
import type { EventView, LogItemView } from '../api/running.ts'
import { decode, encode, type Decoded } from '../transport/codec.ts'

/** The direct-message protocol of peer queries. */
export const PEER_QUERY_PROTOCOL = '/skein/peer-query/1'
/** Largest peer-query message. */
export const MAX_QUERY_MESSAGE_BYTES = 256 * 1024
/** Most parts of one answer (so at most ~16 MiB per answer). */
export const MAX_ANSWER_PARTS = 64
/** Most items in one part. */
export const MAX_ITEMS_PER_PART = 10_000
/** Longest log line sent (longer ones are cut, with a mark). */
export const MAX_LINE_CHARS = 8192
/** Longest reason, explanation or error text sent. */
export const MAX_TEXT_CHARS = 4096
/** Largest `tail` asked. */
export const MAX_TAIL = 100_000
/**
 * Most bytes of log items one answer carries (by {@link logWireBytes}): half of what
 * MAX_ANSWER_PARTS parts hold, so that chunkAnswer never has to drop one of them.
 */
export const MAX_LOG_ANSWER_BYTES = 8 * 1024 * 1024

const peerId = z.string().min(1).max(256)
const counter = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const name = z.string().min(1).max(256)
const text = z.string().max(MAX_TEXT_CHARS)

/** A question. */
export const querySchema = z.discriminatedUnion('k', [
  z.object({ k: z.literal('drain'), host: peerId, drained: z.boolean() }),
  z.object({ k: z.literal('restarting'), untilMs: counter }),
  z.object({ k: z.literal('explain') }),
  z.object({ k: z.literal('events'), since: counter }),
  z.object({ k: z.literal('logs'), service: name, tail: z.number().int().min(0).max(MAX_TAIL), follow: z.boolean(), session: counter, since: counter }),
  z.object({ k: z.literal('cancel'), session: counter }),
])
export type Query = z.infer<typeof querySchema>

const eventWire = z.object({
  time: z.string().max(64),
  kind: z.string().min(1).max(64),
  host: z.string().max(256).nullable(),
  hostId: z.string().max(256).nullable(),
  service: z.string().max(256).nullable(),
  slot: z.number().int().min(-1).max(Number.MAX_SAFE_INTEGER).nullable(),
  generation: counter.nullable(),
  containerId: z.string().max(128).nullable(),
  reason: text.nullable(),
  image: z.string().max(512).optional(),
  durationMs: counter.optional(),
  bytes: counter.optional(),
})

const logWire = z.object({
  service: name,
  slot: z.number().int().min(-1).max(Number.MAX_SAFE_INTEGER),
  host: z.string().max(256),
  kind: z.enum(['line', 'note']),
  stream: z.enum(['stdout', 'stderr']).nullable(),
  time: z.string().max(64).nullable(),
  text: z.string().max(MAX_LINE_CHARS + 16).nullable(),
})

const pendingWire = z.object({ service: name, slot: z.number().int().min(-1).max(Number.MAX_SAFE_INTEGER), kind: z.enum(['unschedulable', 'waiting']), host: peerId.nullable() })
const explainWire = z.object({ service: name, explain: text.nullable(), pending: z.array(pendingWire).max(2000) })

/** An answer (one part of it: list fields hold that part's share; the other fields are repeated). */
export const answerSchema = z.discriminatedUnion('k', [
  z.object({ k: z.literal('drain'), id: peerId, name: z.string().max(256), drained: z.boolean(), items: z.array(z.never()).max(0) }),
  z.object({ k: z.literal('explain'), term: counter, items: z.array(explainWire).max(MAX_ITEMS_PER_PART) }),
  z.object({ k: z.literal('events'), boot: counter, next: counter, items: z.array(eventWire).max(MAX_ITEMS_PER_PART) }),
  z.object({ k: z.literal('logs'), next: counter, items: z.array(logWire).max(MAX_ITEMS_PER_PART) }),
  z.object({ k: z.literal('ok'), items: z.array(z.never()).max(0) }),
])
export type Answer = z.infer<typeof answerSchema>
export type ExplainItem = z.infer<typeof explainWire>
export type QueryKind = Query['k']
/** The answer kind each question gets. */
export const ANSWER_KIND = { drain: 'drain', restarting: 'ok', explain: 'explain', events: 'events', logs: 'logs', cancel: 'ok' } as const satisfies Record<QueryKind, Answer['k']>
/** The answer a question of kind K gets. */
export type AnswerFor<K extends QueryKind> = Extract<Answer, { k: (typeof ANSWER_KIND)[K] }>

/** The schema of every peer-query message. */
export const queryMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('q'), from: peerId, req: counter, q: querySchema }),
  z.object({ t: z.literal('a'), from: peerId, req: counter, part: z.number().int().min(0).max(MAX_ANSWER_PARTS - 1), last: z.boolean(), a: answerSchema }),
  z.object({ t: z.literal('e'), from: peerId, req: counter, code: z.string().min(1).max(64), message: text, hint: text.optional() }),
])
export type QueryMessage = z.infer<typeof queryMessageSchema>

/** Encode a peer-query message. */
export function encodeQueryMessage(msg: QueryMessage): Uint8Array {
  return encode(msg)
}

/** Decode and check a peer-query message. Never throws. */
export function decodeQueryMessage(data: Uint8Array): Decoded<QueryMessage> {
  return decode(queryMessageSchema, data, MAX_QUERY_MESSAGE_BYTES)
}

/** Cut a string to `max` characters, marking the cut. */
export function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}…[cut]`
}

/** An event as it goes on the wire (long texts cut). */
export function eventToWire(e: EventView): EventView {
  return {
    time: e.time, kind: e.kind, host: e.host, hostId: e.hostId, service: e.service, slot: e.slot, generation: e.generation, containerId: e.containerId,
    reason: e.reason === null ? null : clip(e.reason, MAX_TEXT_CHARS - 8),
    ...(e.image !== undefined && { image: clip(e.image, 500) }), ...(e.durationMs !== undefined && { durationMs: Math.max(0, Math.round(e.durationMs)) }), ...(e.bytes !== undefined && { bytes: Math.max(0, Math.round(e.bytes)) }),
  }
}

/** A log item as it goes on the wire (long lines cut; `elsewhere` is never sent). */
export function logToWire(i: LogItemView): LogWire {
  return { service: i.service, slot: i.slot, host: i.host, kind: i.kind === 'line' ? 'line' : 'note', stream: i.stream, time: i.time, text: i.text === null ? null : clip(i.text, MAX_LINE_CHARS) }
}
export type LogWire = z.infer<typeof logWire>

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8')

/** An upper bound of the bytes a log item takes in an encoded answer (its msgpack and chunkAnswer's 1 byte). */
export function logWireBytes(i: LogWire): number {
  return 96 + utf8Bytes(i.service) + utf8Bytes(i.host) + (i.time === null ? 0 : utf8Bytes(i.time)) + (i.text === null ? 0 : utf8Bytes(i.text))
}

/** A note of skein among the log lines (a host that does not answer, lines dropped, …). */
export function logNote(service: string, host: string, text: string): LogItemView {
  return { service, slot: -1, host, kind: 'note', stream: null, time: null, text }
}

/**
 * chunkAnswer for a `logs` answer: when items do not fit, the oldest are dropped as there, and a
 * note saying how many ends the answer (kept: it is the newest item).
 */
export function chunkLogsAnswer(answer: Extract<Answer, { k: 'logs' }>, service: string, host: string, maxBytes = MAX_QUERY_MESSAGE_BYTES): { parts: Answer[]; dropped: number } {
  let got = chunkAnswer(answer, maxBytes)
  let told = 0
  // The note takes room too: say the count that holds with the note in (settles in a step or two).
  for (let i = 0; i < 4 && got.dropped !== told; i++) {
    told = got.dropped
    const note = logToWire(logNote(service, host, `${told} lines on ${host} did not fit in one answer and were dropped`))
    got = chunkAnswer({ ...answer, items: [...answer.items, note] }, maxBytes)
  }
  return got
}

/**
 * Split an answer into parts that each encode under `maxBytes` (the message envelope included).
 * Keeps the newest items when they do not all fit in MAX_ANSWER_PARTS parts; `dropped` counts the
 * rest. An item too large for a part on its own is dropped too.
 */
export function chunkAnswer(answer: Answer, maxBytes = MAX_QUERY_MESSAGE_BYTES): { parts: Answer[]; dropped: number } {
  const items = answer.items as unknown[]
  // Room for the envelope: t, from (a peer id), req, part, last.
  const room = maxBytes - encode({ ...answer, items: [] }).byteLength - 512
  const sizes = items.map((i) => encode(i).byteLength + 1)
  const parts: unknown[][] = []
  let dropped = 0
  let cur: unknown[] = []
  let used = 0
  // From the newest backwards, so that what is dropped is the oldest.
  for (let i = items.length - 1; i >= 0; i--) {
    const size = sizes[i] as number
    if (size > room) {
      dropped++
      continue
    }
    if (cur.length > 0 && (used + size > room || cur.length >= MAX_ITEMS_PER_PART)) {
      parts.push(cur.reverse())
      cur = []
      used = 0
      if (parts.length === MAX_ANSWER_PARTS) {
        dropped += i + 1
        break
      }
    }
    cur.push(items[i])
    used += size
  }
  if (cur.length > 0 || parts.length === 0) parts.push(cur.reverse())
  return { parts: parts.reverse().map((p) => ({ ...answer, items: p }) as Answer), dropped }
}

/** Parts of one answer as they arrive (in any order); `done` once the last one and all before it are in. */
export class AnswerAssembly {
  readonly #parts = new Map<number, Answer>()
  #last = -1

  /** Add a part; false when it does not belong (a part seen twice, past the last, or of another kind). */
  add(part: number, last: boolean, a: Answer): boolean {
    if (this.#parts.has(part) || (this.#last >= 0 && part > this.#last)) return false
    const first = this.#parts.values().next().value
    if (first !== undefined && first.k !== a.k) return false
    if (last) {
      if ([...this.#parts.keys()].some((p) => p > part)) return false
      this.#last = part
    }
    this.#parts.set(part, a)
    return true
  }

  get done(): boolean {
    return this.#last >= 0 && this.#parts.size === this.#last + 1
  }

  /** The whole answer: the first part's fields with every part's items, in order. */
  answer(): Answer {
    const parts = [...this.#parts.entries()].sort((x, y) => x[0] - y[0]).map((e) => e[1])
    const head = parts[0] as Answer
    return { ...head, items: parts.flatMap((p) => p.items as unknown[]) } as Answer
  }
}

/**
 * The log items of several hosts as one list: by time when every line has one (a stable sort, so
 * each replica keeps its order), else host by host as given. Notes come last.
 */
export function mergeLogItems(groups: readonly (readonly LogItemView[])[]): LogItemView[] {
  const all = groups.flat()
  const lines = all.filter((i) => i.kind === 'line')
  const notes = all.filter((i) => i.kind !== 'line')
  const stamped = lines.every((i) => i.time !== null)
  const sorted = stamped ? lines.map((i, n) => ({ i, n, t: Date.parse(i.time as string) })).sort((a, b) => a.t - b.t || a.n - b.n).map((x) => x.i) : lines
  return [...sorted, ...notes]
}

/** Events of several sources as one list, oldest first (a stable sort: equal times keep their order). */
export function mergeEvents(groups: readonly (readonly EventView[])[]): EventView[] {
  return groups.flat().map((e, n) => ({ e, n, t: Date.parse(e.time) })).sort((a, b) => a.t - b.t || a.n - b.n).map((x) => x.e)
}

/**
 * The next request id or session number after `n`: counts up, and wraps from the largest safe
 * integer back to 1 (0 means none in the protocol).
 */
export function nextCounter(n: number): number {
  return n >= Number.MAX_SAFE_INTEGER || n < 0 ? 1 : n + 1
}

/** A first request id or session number from `random` (uniform in [0, 1)): 1 … 2^53 − 1. */
export function randomCounter(random: () => number): number {
  return 1 + Math.floor(random() * (Number.MAX_SAFE_INTEGER - 1))
}

/** Bounds of a SeqRing beyond its item count. */
export interface SeqRingOptions<T> {
  /** Most bytes kept, by `sizeOf` (the oldest items go first; the newest is always kept). */
  maxBytes?: number
  /** An item's size in bytes (needed for `maxBytes` and for the byte limit of `since`). */
  sizeOf?: (v: T) => number
}

/**
 * A ring buffer of items numbered from `start + 1` on; `since(n)` gives the ones numbered above n.
 * Holds at most `capacity` items (and `maxBytes`): a push over the bound overwrites the oldest, in
 * O(1) (amortised O(1) when bytes evict several).
 */
export class SeqRing<T> {
  readonly #vals: (T | undefined)[] = []
  readonly #sizes: number[] = []
  /** Physical index of the oldest item. */
  #head = 0
  #count = 0
  #bytes = 0
  #seq: number
  readonly #capacity: number
  readonly #maxBytes: number
  readonly #sizeOf: ((v: T) => number) | undefined

  constructor(capacity: number, start = 0, opts: SeqRingOptions<T> = {}) {
    this.#capacity = Math.max(1, Math.floor(capacity))
    this.#seq = start
    this.#maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY
    this.#sizeOf = opts.sizeOf
  }

  push(v: T): void {
    if (this.#count === this.#capacity) this.#evict()
    const at = (this.#head + this.#count) % this.#capacity
    const size = this.#sizeOf?.(v) ?? 0
    this.#vals[at] = v
    this.#sizes[at] = size
    this.#count++
    this.#bytes += size
    this.#seq++
    while (this.#bytes > this.#maxBytes && this.#count > 1) this.#evict()
  }

  #evict(): void {
    this.#bytes -= this.#sizes[this.#head] ?? 0
    this.#vals[this.#head] = undefined
    this.#head = (this.#head + 1) % this.#capacity
    this.#count--
  }

  /**
   * Items numbered above `seq` (at most `max`, and at most `maxBytes` by `sizeOf` though always at
   * least one; oldest first), the number of the last one given (`seq` when none), and how many
   * after `seq` were overwritten before they were asked for.
   */
  since(seq: number, max = Number.MAX_SAFE_INTEGER, maxBytes = Number.POSITIVE_INFINITY): { items: T[]; next: number; dropped: number } {
    const oldest = this.#seq - this.#count + 1
    const from = Math.max(seq + 1, oldest)
    if (this.#count === 0 || from > this.#seq || max <= 0) return { items: [], next: seq, dropped: 0 }
    const items: T[] = []
    let bytes = 0
    for (let n = from; n <= this.#seq && items.length < max; n++) {
      const at = (this.#head + (n - oldest)) % this.#capacity
      bytes += this.#sizes[at] ?? 0
      if (items.length > 0 && bytes > maxBytes) break
      items.push(this.#vals[at] as T)
    }
    return { items, next: from + items.length - 1, dropped: from - seq - 1 }
  }

  /** The number of the newest item (`start` when empty). */
  get last(): number {
    return this.#seq
  }

  /** Items held. */
  get size(): number {
    return this.#count
  }
}

/**
 * A first-in first-out queue of at most `max` items: a push onto a full queue drops the oldest
 * (counted in `dropped`). Push and shift are O(1) amortised.
 */
export class BoundedQueue<T> {
  #items: (T | undefined)[] = []
  #head = 0
  readonly #max: number
  dropped = 0

  constructor(max: number) {
    this.#max = Math.max(1, Math.floor(max))
  }

  push(v: T): void {
    this.#items.push(v)
    if (this.#items.length - this.#head > this.#max) {
      this.#items[this.#head++] = undefined
      this.dropped++
    }
    this.#compact()
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined
    const v = this.#items[this.#head]
    this.#items[this.#head++] = undefined
    this.#compact()
    return v
  }

  /** Every item, oldest first; the queue is then empty. */
  takeAll(): T[] {
    const all = this.#items.slice(this.#head) as T[]
    this.#items = []
    this.#head = 0
    return all
  }

  get size(): number {
    return this.#items.length - this.#head
  }

  /** Drop the consumed front once it is most of the array (so each item is copied O(1) times). */
  #compact(): void {
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
  }
}
