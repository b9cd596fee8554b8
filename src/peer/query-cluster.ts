/**
 * The asking side of the peer queries other than logs (query-logs.ts): `skein events` merged from
 * every live host, the leader's explanation of pending replicas for `skein ps` / `skein services`
 * on a follower (asked with a short timeout, cached briefly), and `skein drain` forwarded to the
 * leader. The answering side is in running.ts.
 */
import type { DrainView, EventView } from '../api/running.ts'
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { SchedulerExplain } from '../scheduler/service.ts'
import type { Pending } from '../scheduler/types.ts'
import { BoundedQueue, MAX_TEXT_CHARS, mergeEvents, type ExplainItem } from './query.ts'
import type { QueryShell } from './query-shell.ts'

/** What gathering the events of every host needs. */
export interface ClusterEventContext {
  /** This peer's own events: its agent's, the committed log's and its membership view's. */
  local(): EventView[]
  onLocal(fn: (e: EventView) => void): () => void
  /** The other hosts to ask (alive or suspect). */
  remoteHosts(): { id: string; name: string }[]
  ask: QueryShell['ask']
  now(): number
  /** How long a host may take to answer (default 2 s). */
  timeoutMs?: number
  /** How often a follow asks every host for new events (default 1 s). */
  pollMs?: number
}

/** Where this peer is in each host's event numbering. */
type Cursors = Map<string, { boot: number; next: number }>

/** A stand-in event for a host that did not answer. */
function noAnswer(ctx: ClusterEventContext, host: { id: string; name: string }, err: unknown): EventView {
  return {
    time: new Date(ctx.now()).toISOString(), kind: 'no-answer', host: host.name, hostId: host.id, service: null, slot: null, generation: null, containerId: null,
    reason: `its agent events are missing: ${errorMessage(err)}`,
  }
}

/** Ask one host for its agent events after its cursor (from the start when it restarted meanwhile). */
async function eventsOf(ctx: ClusterEventContext, cursors: Cursors, id: string): Promise<EventView[]> {
  const timeoutMs = ctx.timeoutMs ?? 2_000
  const cur = cursors.get(id)
  let a = await ctx.ask(id, { k: 'events', since: cur?.next ?? 0 }, timeoutMs)
  if (cur !== undefined && a.boot !== cur.boot && cur.next > 0) a = await ctx.ask(id, { k: 'events', since: 0 }, timeoutMs)
  cursors.set(id, { boot: a.boot, next: a.next })
  return a.items
}

/** One round: every remote host's new agent events; failures become `no-answer` events (once per streak). */
async function round(ctx: ClusterEventContext, cursors: Cursors, failing: Set<string>): Promise<EventView[][]> {
  return await Promise.all(ctx.remoteHosts().map(async (h) => {
    try {
      const got = await eventsOf(ctx, cursors, h.id)
      failing.delete(h.id)
      return got
    } catch (err) {
      if (failing.has(h.id)) return []
      failing.add(h.id)
      return [noAnswer(ctx, h, err)]
    }
  }))
}

/** This peer's events and every live host's agent events, oldest first. */
export async function clusterEvents(ctx: ClusterEventContext): Promise<EventView[]> {
  const local = ctx.local()
  return mergeEvents([local, ...(await round(ctx, new Map(), new Set()))])
}

/**
 * `skein events -f`: the events so far (as clusterEvents), then new ones as they come, until
 * `signal` aborts: this peer's at once, the other hosts' every `pollMs` (each batch by time).
 */
export async function* followClusterEvents(ctx: ClusterEventContext, signal: AbortSignal): AsyncGenerator<EventView> {
  const queue = new BoundedQueue<EventView>(10_000)
  let wake: (() => void) | undefined
  const off = ctx.onLocal((e) => {
    queue.push(e)
    wake?.()
  })
  const cursors: Cursors = new Map()
  const failing = new Set<string>()
  try {
    const first = ctx.local()
    yield* mergeEvents([first, ...(await round(ctx, cursors, failing))])
    let nextPoll = ctx.now() + (ctx.pollMs ?? 1_000)
    while (!signal.aborted) {
      if (queue.size > 0) {
        yield* mergeEvents([queue.takeAll()])
        continue
      }
      const wait = nextPoll - ctx.now()
      if (wait > 0) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(t)
            signal.removeEventListener('abort', done)
            wake = undefined
            resolve()
          }
          const t = setTimeout(done, wait)
          wake = done
          signal.addEventListener('abort', done, { once: true })
        })
        continue
      }
      const got = await round(ctx, cursors, failing)
      nextPoll = ctx.now() + (ctx.pollMs ?? 1_000)
      if (!signal.aborted) yield* mergeEvents(got)
    }
  } finally {
    off()
  }
}

/** The scheduler's explanation as this peer can show it: its own while it leads, else the leader's. */
export interface ExplainView {
  /** False when neither this peer leads nor the leader answered lately: show no explanation. */
  known: boolean
  explain: Record<string, string>
  pending: Pending[]
}

/** Cut an explanation to what the wire takes (MAX_TEXT_CHARS), ending a cut one with "…". */
export function clipExplain(text: string): string {
  return text.length <= MAX_TEXT_CHARS ? text : `${text.slice(0, MAX_TEXT_CHARS - 1)}…`
}

/** The explanation as a list of per-service items (the `explain` answer; long explanations cut). */
export function explainToItems(ex: Pick<SchedulerExplain, 'explain' | 'pending'>): ExplainItem[] {
  const names = [...new Set([...Object.keys(ex.explain), ...ex.pending.map((p) => p.service)])].sort()
  return names.map((service) => {
    const why = ex.explain[service]
    return { service, explain: why === undefined ? null : clipExplain(why), pending: ex.pending.filter((p) => p.service === service).slice(0, 2000) }
  })
}

/** Back from the list of items. */
export function explainFromItems(items: readonly ExplainItem[]): ExplainView {
  const explain: Record<string, string> = {}
  for (const i of items) if (i.explain !== null) explain[i.service] = i.explain
  return { known: true, explain, pending: items.flatMap((i) => i.pending) }
}

/** What the leader's explanation needs. */
export interface ExplainSourceInit {
  selfId: string
  /** This peer's scheduler. */
  local(): SchedulerExplain
  leaderId(): string | null
  ask: QueryShell['ask']
  now(): number
  /** An answer younger than this is not asked again (default 1 s). */
  freshMs?: number
  /** An answer older than this is not shown (default 5 s). */
  keepMs?: number
  /** How long the leader may take (default 500 ms). */
  timeoutMs?: number
  onError?(err: unknown): void
}

/** The explanation `skein ps` and `skein services` show. */
export interface ExplainSource {
  current(): ExplainView
  /** Ask the leader when this peer does not lead and its last answer is not fresh. Never rejects. */
  refresh(): Promise<void>
}

/** Create the source. */
export function createExplainSource(init: ExplainSourceInit): ExplainSource {
  let cache: { leader: string; at: number; view: ExplainView } | undefined
  let asking: Promise<void> | undefined
  const none: ExplainView = { known: false, explain: {}, pending: [] }
  return {
    current() {
      const ex = init.local()
      if (ex.leading) return { known: true, explain: ex.explain, pending: ex.pending }
      const leader = init.leaderId()
      if (cache === undefined || cache.leader !== leader || init.now() - cache.at > (init.keepMs ?? 5_000)) return none
      return cache.view
    },
    async refresh() {
      const leader = init.leaderId()
      if (init.local().leading || leader === null || leader === init.selfId) return
      if (cache !== undefined && cache.leader === leader && init.now() - cache.at < (init.freshMs ?? 1_000)) return
      asking ??= init
        .ask(leader, { k: 'explain' }, init.timeoutMs ?? 500)
        .then((a) => {
          cache = { leader, at: init.now(), view: explainFromItems(a.items) }
        })
        .catch((err: unknown) => init.onError?.(err))
        .finally(() => {
          asking = undefined
        })
      await asking
    },
  }
}

/**
 * Drain or undrain through the leader `leaderId` (this peer does not lead): its answer, or its
 * error. When leadership moved meanwhile (`not-leader`), asks the new leader (at most 3 times).
 */
export async function drainViaLeader(
  ask: QueryShell['ask'],
  leaderId: () => string | null,
  host: { id: string; name: string },
  drained: boolean,
  opts: { selfId: string; timeoutMs?: number; leaderName(id: string): string },
): Promise<DrainView> {
  const verb = drained ? 'drain' : 'undrain'
  let last: { err: unknown; leader: string } | undefined
  for (let attempt = 0; attempt < 3; attempt++) {
    const leader = leaderId()
    if (leader === null) break
    if (leader === opts.selfId) throw new SkeinError('not-leader', `this peer became the leader while forwarding; run \`skein ${verb} ${host.name}\` again`)
    try {
      const a = await ask(leader, { k: 'drain', host: host.id, drained }, opts.timeoutMs ?? 15_000)
      return { id: a.id, name: a.name, drained: a.drained }
    } catch (err) {
      last = { err, leader }
      if (!(err instanceof SkeinError) || err.code !== 'not-leader' || leaderId() === leader) throw forwardError(err, verb, opts.leaderName(leader))
    }
  }
  if (last !== undefined) throw forwardError(last.err, verb, opts.leaderName(last.leader))
  throw new SkeinError('no-leader', `cannot ${verb} ${host.name}: the cluster has no leader right now`, { hint: 'wait for one (`skein status` names it) and retry' })
}

function forwardError(err: unknown, verb: string, leader: string): unknown {
  if (err instanceof SkeinError && (err.code === 'peer-timeout' || err.code === 'peer-unreachable')) {
    return new SkeinError('leader-unreachable', `the ${verb} was forwarded to the leader, ${leader}, which did not answer (${err.message})`, { hint: `retry; or run it on ${leader} itself` })
  }
  // The peer this one thinks leads says it does not (its words name peer ids, not for the user).
  if (err instanceof SkeinError && err.code === 'not-leader') {
    return new SkeinError('not-leader', `${leader} stopped leading; retry in a moment`, { hint: `an election is under way or just ended: \`skein status\` names the new leader; then run \`skein ${verb}\` again`, cause: err })
  }
  return err
}
