import type { DebugProposeView } from '../api/types.ts'
import type { ConsensusService } from '../consensus/service.ts'
import { SkeinError } from '../core/errors.ts'

/**
 * The debug-only proposal route (`skein agent --debug-api`, POST /v1/debug/propose), used by
 * `npm run bench:election` to time commits: it proposes `count` assignment sets for the service
 * `debug/bench` on this peer (the leader), keeping at most `window` in flight, and reports the
 * time from each proposal until this peer applied it (on the leader: the commit latency).
 */
export async function debugPropose(consensus: ConsensusService, selfId: string, count: number, window: number, now: () => number = () => performance.now()): Promise<DebugProposeView> {
  if (consensus.status().role !== 'leader') {
    const leader = consensus.status().leader
    throw new SkeinError('not-leader', 'this peer is not the Raft leader', leader === null ? { hint: 'no leader is known yet' } : { hint: `ask ${leader}` })
  }
  const latencies: number[] = new Array<number>(count).fill(0)
  let first = Number.POSITIVE_INFINITY
  let last = 0
  let term = 0
  let next = 0
  const started = now()
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++
      const t0 = now()
      const pos = await consensus.proposeAndWait({ kind: 'assignments', service: 'debug/bench', revision: i, slots: { s0: selfId } }, { timeoutMs: 30_000 })
      latencies[i] = now() - t0
      first = Math.min(first, pos.index)
      last = Math.max(last, pos.index)
      term = Math.max(term, pos.term)
    }
  }
  await Promise.all(Array.from({ length: Math.min(window, count) }, () => worker()))
  const elapsedMs = now() - started
  // With NODE_OPTIONS=--expose-gc, report the live heap rather than garbage not yet collected.
  const gc = (globalThis as { gc?: () => void }).gc
  if (typeof gc === 'function') gc()
  const m = process.memoryUsage()
  const mb = (n: number): number => Math.round((n / 1024 / 1024) * 10) / 10
  return { count, term, firstIndex: first, lastIndex: last, elapsedMs, latenciesMs: latencies, memoryMb: { rss: mb(m.rss), heapUsed: mb(m.heapUsed), heapTotal: mb(m.heapTotal), external: mb(m.external) } }
}
