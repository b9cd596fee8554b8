/**
 * The admin side-channel of the consensus shell (admin.ts has the messages): removal requests
 * sent to the leader (graceful leave, `skein voters remove`) and progress queries (`skein
 * voters` on a follower). Every wait is bounded; every handler swallows and logs its errors.
 */
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import type { Transport } from '../transport/types.ts'
import { CONSENSUS_ADMIN_PROTOCOL, decodeAdminMessage, encodeAdminMessage, type AdminMessage } from './admin.ts'
import type { RemoteProgress } from './status.ts'
import type { RaftStatus } from './types.ts'

/** What the admin shell needs from the consensus shell. */
export interface AdminContext {
  selfId: string
  transport: Transport
  log: Logger
  addressOf(id: string): string | undefined
  status(): RaftStatus
  /** A configuration change is in the log and not yet committed. */
  confPending(): boolean
  /** Leader side: queue the removal of `id` for the voter policy. */
  requestRemoval(id: string): void
  running(): boolean
  now(): number
  nameOf(id: string): string
  /** The unsafe local removal, without a leader (service.ts). */
  forceRemove(id: string): void
}

/** The admin shell. */
export interface AdminShell {
  /** Handle an admin message from an authenticated peer. Never throws. */
  receive(from: string, data: Uint8Array): void
  /**
   * Get `id` out of the configuration through the log: queued locally on the leader, else sent
   * to the leader (again every `retryMs`) until it answers that the removal is committed.
   * Resolves false when `deadline` (clock ms) passes first.
   */
  remove(id: string, deadline: number, now: () => number): Promise<boolean>
  /**
   * Remove a voter or learner through the log (bounded wait); with `force`, when that fails, the
   * unsafe local removal. Throws SkeinError 'not-a-voter', 'no-leader', 'remove-timeout'.
   */
  removeVoter(id: string, opts: { force?: boolean; timeoutMs?: number }): Promise<{ id: string; forced: boolean }>
  /** Get this peer out of the configuration before it leaves (bounded). True when it is out. */
  leave(opts: { timeoutMs?: number }): Promise<boolean>
  /** Ask the leader for its replication progress; undefined after `timeoutMs` or without a leader. */
  progress(timeoutMs: number): Promise<RemoteProgress | undefined>
  /** Resolve every pending wait (as failed). */
  stop(): void
  readonly counters: { invalid: number; forged: number }
}

const RETRY_MS = 300

/** Create the admin shell and register its protocol handler. */
export function createAdminShell(ctx: AdminContext): AdminShell {
  const { log, transport } = ctx
  const counters = { invalid: 0, forged: 0 }
  let nextReq = 1
  const waiters = new Map<number, (msg: AdminMessage) => void>()
  const wakeups = new Set<() => void>()

  const send = (to: string, msg: AdminMessage): void => {
    const address = ctx.addressOf(to)
    transport
      .send(to, CONSENSUS_ADMIN_PROTOCOL, encodeAdminMessage(msg), { ...(address === undefined ? {} : { address }), signal: AbortSignal.timeout(2_000) })
      .catch((err: unknown) => log.debug({ to, t: msg.t, err: errorMessage(err) }, 'admin message not sent'))
  }

  const inConf = (id: string): boolean => {
    const st = ctx.status()
    return st.voters.includes(id) || st.learners.includes(id)
  }

  const onMessage = (from: string, msg: AdminMessage): void => {
    switch (msg.t) {
      case 'remove': {
        if (ctx.status().role !== 'leader') return
        if (!inConf(msg.id) && !ctx.confPending()) {
          send(from, { t: 'removed', from: ctx.selfId, req: msg.req, id: msg.id })
          return
        }
        log.info({ id: msg.id, by: from }, msg.id === from ? 'a member asks to leave the voter set' : 'a member asks to remove a voter')
        ctx.requestRemoval(msg.id)
        return
      }
      case 'progress-req': {
        const st = ctx.status()
        if (st.role !== 'leader' || st.progress === undefined) return
        const members = Object.entries(st.progress).map(([id, p]) => ({ id, match: p.match, recentActive: p.recentActive }))
        send(from, { t: 'progress', from: ctx.selfId, req: msg.req, term: st.term, lastIndex: st.lastIndex, members })
        return
      }
      case 'removed':
      case 'progress':
        waiters.get(msg.req)?.(msg)
        return
    }
  }

  /** Sleep up to `ms`, or until stop() or the caller's `onWake` handle is called. */
  const sleep = (ms: number, onWake?: (wake: () => void) => void): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t)
        wakeups.delete(done)
        resolve()
      }
      const t = setTimeout(done, ms)
      wakeups.add(done)
      onWake?.(done)
    })

  const shell: AdminShell = {
    counters,
    receive(from: string, data: Uint8Array): void {
      try {
        if (!ctx.running()) return
        const d = decodeAdminMessage(data)
        if (!d.ok) {
          counters.invalid++
          log.debug({ from, reason: d.reason }, 'dropped an invalid consensus admin message')
          return
        }
        if (d.value.from !== from) {
          counters.forged++
          log.debug({ from, claimed: d.value.from }, 'dropped a consensus admin message whose sender is not its author')
          return
        }
        onMessage(from, d.value)
      } catch (err) {
        log.error({ err: errorMessage(err) }, 'consensus admin handler failed')
      }
    },

    async remove(id: string, deadline: number, now: () => number): Promise<boolean> {
      const req = nextReq++
      let answered = false
      let wake: (() => void) | undefined
      waiters.set(req, (msg) => {
        if (msg.t !== 'removed' || msg.id !== id) return
        answered = true
        wake?.()
      })
      // A peer removed from the configuration hears no more from the leader and may lose track
      // of it (it campaigns in vain): keep asking the last leader it knew.
      let lastLeader: string | null = null
      try {
        for (let round = 0; ctx.running() && now() < deadline && round < 10_000; round++) {
          const st = ctx.status()
          if (st.leader !== null && st.leader !== ctx.selfId) lastLeader = st.leader
          if (st.role === 'leader') {
            if (!inConf(id) && !ctx.confPending()) return true
            ctx.requestRemoval(id)
          } else if (answered) {
            return true
          } else if (lastLeader !== null) {
            send(lastLeader, { t: 'remove', from: ctx.selfId, req, id })
          }
          await sleep(Math.min(RETRY_MS, Math.max(1, deadline - now())), (w) => (wake = w))
          if (answered) return true
        }
        return answered
      } finally {
        waiters.delete(req)
      }
    },

    async removeVoter(id: string, opts: { force?: boolean; timeoutMs?: number }): Promise<{ id: string; forced: boolean }> {
      const st = ctx.status()
      if (!st.voters.includes(id) && !st.learners.includes(id)) {
        throw new SkeinError('not-a-voter', `${ctx.nameOf(id)} is neither a voter nor a learner`, { hint: '`skein voters` lists them' })
      }
      const force = opts.force === true
      if (force && id === ctx.selfId) throw new SkeinError('usage', 'a peer cannot force its own removal', { hint: 'run it on a surviving peer, naming the lost one' })
      const timeoutMs = opts.timeoutMs ?? (force ? 3_000 : 10_000)
      const deadline = ctx.now() + timeoutMs
      // Give an election a moment when no leader is known.
      for (let i = 0; i < 40 && ctx.status().leader === null && ctx.now() < deadline; i++) await sleep(50)
      if (ctx.status().leader !== null && (await shell.remove(id, deadline, ctx.now))) return { id, forced: false }
      if (force) {
        ctx.forceRemove(id)
        return { id, forced: true }
      }
      if (ctx.status().leader === null) {
        throw new SkeinError('no-leader', 'no leader is known, so the removal cannot go through the log', {
          hint: 'wait for a leader; if a quorum of voters is gone for good, rerun with --force on a surviving peer (docs/consensus.md, "Manual recovery")',
        })
      }
      throw new SkeinError('remove-timeout', `${ctx.nameOf(id)} is still in the configuration after ${timeoutMs} ms`, { hint: 'is a quorum of voters up? `skein voters` shows them; --force is the last resort' })
    },

    async leave(opts: { timeoutMs?: number }): Promise<boolean> {
      const st = ctx.status()
      if (!st.voters.includes(ctx.selfId) && !st.learners.includes(ctx.selfId)) return true
      if (st.voters.length === 1 && st.voters[0] === ctx.selfId && st.learners.length === 0) {
        log.warn('the only voter leaves: the cluster has no voter until an operator makes one (docs/consensus.md, "Manual recovery")')
        return false
      }
      const ok = await shell.remove(ctx.selfId, ctx.now() + (opts.timeoutMs ?? 10_000), ctx.now)
      if (ok) log.info('removed from the voter set; leaving')
      else log.warn('leaving while still in the voter set (the removal did not commit in time)')
      return ok
    },

    async progress(timeoutMs: number): Promise<RemoteProgress | undefined> {
      const leader = ctx.status().leader
      if (leader === null || leader === ctx.selfId) return undefined
      const req = nextReq++
      return await new Promise<RemoteProgress | undefined>((resolve) => {
        const finish = (v: RemoteProgress | undefined): void => {
          clearTimeout(timer)
          waiters.delete(req)
          wakeups.delete(onStop)
          resolve(v)
        }
        const onStop = (): void => finish(undefined)
        const timer = setTimeout(onStop, timeoutMs)
        wakeups.add(onStop)
        waiters.set(req, (msg) => {
          if (msg.t === 'progress') finish({ term: msg.term, lastIndex: msg.lastIndex, members: msg.members })
        })
        send(leader, { t: 'progress-req', from: ctx.selfId, req })
      })
    },

    stop(): void {
      for (const w of [...wakeups]) w()
      wakeups.clear()
    },
  }
  return shell
}
