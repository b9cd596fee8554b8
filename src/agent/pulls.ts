// Image pulls for the agent shell: one pull at a time per image (concurrent creates share it),
// reported as `pulling` / `pulled` / `pull-failed` events, with progress logged at info at most
// every PULL_LOG_INTERVAL_MS per image. docs/agent.md.
import type { Clock } from '../core/clock.ts'
import { errorMessage } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import { formatDuration } from '../model/units.ts'
import { PullTally } from '../runtime/docker-stream.ts'
import { PULL_STARTED, type ContainerRuntime, type PullProgress } from '../runtime/types.ts'
import type { AgentEvent } from './service.ts'

/** Pull progress is logged at info at most this often per image. */
export const PULL_LOG_INTERVAL_MS = 2000

/** Where a pull is for (the replica whose create needed it). */
export type PullFor = Pick<AgentEvent, 'service' | 'slot' | 'generation'>

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`

/** `ensureImage(image, where)`: resolves when the image is present; a pull that fails rejects. */
export function createPuller(deps: {
  runtime: Pick<ContainerRuntime, 'ensureImage'>
  clock: Clock
  log: Logger
  record: (e: Omit<AgentEvent, 'time'>) => void
  signal: AbortSignal
  /** True once the agent stops: a pull aborted by the stop is not reported as failed. */
  stopped: () => boolean
}): (image: string, where: PullFor) => Promise<void> {
  const { runtime, clock, log, record } = deps
  const pulls = new Map<string, Promise<void>>()

  const pull = async (image: string, where: PullFor): Promise<void> => {
    const st: { tally: PullTally | null; since: number; loggedAt: number } = { tally: null, since: 0, loggedAt: 0 }
    const onProgress = (p: PullProgress) => {
      const now = clock.now()
      if (st.tally === null) {
        st.tally = new PullTally()
        st.since = st.loggedAt = now
        record({ kind: 'pulling', ...where, image, reason: image })
        log.info({ image }, 'pulling image')
      }
      if (p.status === PULL_STARTED) return
      st.tally.push(p)
      if (now - st.loggedAt < PULL_LOG_INTERVAL_MS) return
      st.loggedAt = now
      const sum = st.tally.summary()
      log.info({ image, ...sum }, `pulling image: ${sum.layersDone}/${sum.layersTotal} layers, ${mib(sum.bytes)}${sum.bytesTotal === null ? '' : ` of ${mib(sum.bytesTotal)}`}`)
    }
    try {
      await runtime.ensureImage(image, { signal: deps.signal, onProgress })
    } catch (err) {
      if (st.tally !== null && !deps.stopped()) {
        record({ kind: 'pull-failed', ...where, image, durationMs: clock.now() - st.since, reason: errorMessage(err) })
        log.warn({ image, err: errorMessage(err) }, 'pulling image failed')
      }
      throw err
    }
    if (st.tally === null) return // it was there
    const durationMs = clock.now() - st.since
    const bytes = st.tally.summary().bytesTotal ?? undefined
    const text = `${image} in ${formatDuration(durationMs)}${bytes === undefined ? '' : `, ${mib(bytes)}`}`
    record({ kind: 'pulled', ...where, image, durationMs, ...(bytes === undefined ? {} : { bytes }), reason: text })
    log.info({ image, durationMs, bytes }, `pulled ${text}`)
  }

  return (image, where) => {
    let p = pulls.get(image)
    if (p === undefined) {
      p = pull(image, where).finally(() => pulls.delete(image))
      pulls.set(image, p)
    }
    return p
  }
}
