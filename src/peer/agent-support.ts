import { networkInterfaces } from 'node:os'
import { causeCodes } from '../api/client.ts'
import { SkeinError, errorMessage } from '../core/errors.ts'
import { formatHostPort, isUnspecifiedHost, parseHostPort } from '../core/hostport.ts'
import type { Logger } from '../core/logger.ts'
import type { Member } from '../membership/types.ts'

/** Helpers of the composition root (agent.ts), kept apart so that they can be tested alone. */

/** What the agent uses of the membership service (src/membership/service.ts). */
export interface Membership {
  start(): Promise<void> | void
  stop(): Promise<void>
  join(addresses: string[]): Promise<{ joined: string[]; failed: { address: string; error: string }[] }>
  leave(): Promise<void>
  members(): Member[]
  self(): Member
}

/**
 * The address others should dial, when `--advertise` was not given: the listen host if it is a
 * specific one, else the first non-internal IPv4 address of this host (else loopback), with the
 * port actually bound (from `bound`, the transport's `host:port` list, when listening on port 0).
 */
export function chooseAdvertise(listen: string, bound: readonly string[], interfaces = networkInterfaces()): string {
  const hp = parseHostPort(listen, { what: '--listen' })
  const boundPorts = bound.flatMap((a) => {
    try {
      return [parseHostPort(a)]
    } catch {
      return []
    }
  })
  const port = hp.port !== 0 ? hp.port : (boundPorts.find((b) => b.port !== 0)?.port ?? 0)
  if (!isUnspecifiedHost(hp.host)) return formatHostPort({ host: hp.host, port })
  for (const list of Object.values(interfaces)) {
    for (const i of list ?? []) {
      if (i.family === 'IPv4' && !i.internal) return formatHostPort({ host: i.address, port })
    }
  }
  const concrete = boundPorts.find((b) => !isUnspecifiedHost(b.host))
  return formatHostPort({ host: concrete?.host ?? '127.0.0.1', port })
}

/** A SkeinError for a failed listen on the `what` ('peer' or 'API') address; other errors pass through. */
export function listenError(what: string, listen: string, err: unknown): unknown {
  if (err instanceof SkeinError) return err
  const codes = causeCodes(err)
  const text = errorMessage(err)
  const flag = what === 'peer' ? '--listen' : '--api'
  if (codes.includes('EADDRINUSE') || text.includes('EADDRINUSE')) {
    return new SkeinError('port-in-use', `the ${what} address ${listen} is already in use`, { hint: `is another skein agent running? pass ${flag} HOST:PORT`, cause: err })
  }
  if (codes.includes('EADDRNOTAVAIL') || text.includes('EADDRNOTAVAIL')) {
    return new SkeinError('bad-address', `cannot listen on ${listen}: that address is not on this host`, { hint: `pass ${flag} with a local address`, cause: err })
  }
  if (codes.includes('EACCES') || text.includes('EACCES')) {
    return new SkeinError('permission', `no permission to listen on ${listen}`, { hint: 'ports below 1024 need root', cause: err })
  }
  return err
}

/**
 * Join through `addresses`, retrying with exponential backoff (0.5 s doubling to 30 s, with
 * jitter) while none answers, until one does, another member reaches us, or `signal` aborts.
 */
export async function joinLoop(init: {
  membership: Pick<Membership, 'join' | 'members'>
  addresses: string[]
  selfId: string
  logger: Logger
  signal: AbortSignal
  firstDelayMs?: number
  maxDelayMs?: number
  random?: () => number
}): Promise<void> {
  const { membership, addresses, logger, signal } = init
  if (addresses.length === 0) return
  const random = init.random ?? Math.random
  let delay = init.firstDelayMs ?? 500
  const maxDelay = init.maxDelayMs ?? 30_000
  const othersAlive = (): boolean => membership.members().some((m) => m.id !== init.selfId && m.state === 'alive')
  for (let attempt = 1; !signal.aborted; attempt++) {
    if (attempt > 1 && othersAlive()) {
      logger.info('reached by the cluster; stopped retrying the join')
      return
    }
    let res: { joined: string[]; failed: { address: string; error: string }[] }
    try {
      res = await membership.join(addresses)
    } catch (err) {
      res = { joined: [], failed: addresses.map((address) => ({ address, error: errorMessage(err) })) }
    }
    if (signal.aborted) return
    if (res.joined.length > 0) {
      logger.info({ joined: res.joined, failed: res.failed }, `joined the cluster through ${res.joined.join(', ')}`)
      return
    }
    const wait = Math.round(delay * (0.8 + 0.4 * random()))
    logger.warn({ attempt, failed: res.failed, retryInMs: wait }, `no peer answered at ${addresses.join(', ')}; retrying`)
    await sleep(wait, signal)
    delay = Math.min(delay * 2, maxDelay)
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const onAbort = (): void => {
      clearTimeout(timer)
      resolve()
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
