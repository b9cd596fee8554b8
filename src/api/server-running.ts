import type { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { SkeinError } from '../core/errors.ts'
import { DrainRequestSchema, type EventView, type RunningApi } from './running.ts'

/**
 * The routes of the running flow (docs/api.md): POST /v1/nodes/drain, GET /v1/events and
 * GET /v1/logs. With `follow=1`, events and logs are server-sent events (`data: <JSON view>`),
 * until the client goes away.
 */
export function registerRunningRoutes(app: Hono, peer: RunningApi): void {
  const { drain, events, onEvent, followEvents, logs } = peer
  if (drain !== undefined) {
    app.post('/v1/nodes/drain', async (c) => {
      const body = DrainRequestSchema.safeParse(await c.req.json().catch(() => undefined))
      if (!body.success) throw new SkeinError('bad-request', 'the body must be JSON: { "host": "<node name or peer id>", "drained": true }')
      return c.json(await drain.call(peer, body.data.host, body.data.drained))
    })
  }
  if (events !== undefined) {
    const follow = followEvents !== undefined ? (signal: AbortSignal) => followEvents.call(peer, signal)
      : onEvent !== undefined ? (signal: AbortSignal) => followLocal(() => events.call(peer), (fn) => onEvent.call(peer, fn), signal)
        : undefined
    app.get('/v1/events', async (c) => {
      if (!isFollow(c.req.query('follow')) || follow === undefined) return c.json(await events.call(peer))
      return streamSSE(c, async (s) => {
        const abort = new AbortController()
        s.onAbort(() => abort.abort())
        const it = follow(abort.signal)[Symbol.asyncIterator]()
        try {
          let next = it.next()
          while (!s.aborted) {
            // A comment line now and then finds a client that went away.
            let timer: NodeJS.Timeout | undefined
            const r = await Promise.race([next, new Promise<'tick'>((resolve) => (timer = setTimeout(() => resolve('tick'), 15_000)))])
            clearTimeout(timer)
            if (r === 'tick') {
              if (!s.aborted) await s.write(': keep-alive\n\n')
              continue
            }
            if (r.done === true) break
            await s.writeSSE({ data: JSON.stringify(r.value) })
            next = it.next()
          }
        } finally {
          abort.abort()
          void it.return?.(undefined)
        }
      })
    })
  }
  if (logs !== undefined) {
    app.get('/v1/logs', (c) => {
      const service = c.req.query('service')
      if (service === undefined || service === '') throw new SkeinError('bad-request', 'the query needs ?service=<name> (and optionally &tail=N&follow=1)')
      const tailText = c.req.query('tail')
      const tail = tailText === undefined || tailText === '' ? undefined : Number(tailText)
      if (tail !== undefined && (!Number.isInteger(tail) || tail < 0 || tail > 100_000)) throw new SkeinError('bad-request', 'tail must be an integer from 0 to 100000')
      const follow = isFollow(c.req.query('follow'))
      if (!follow) {
        return (async () => {
          const out = []
          for await (const item of logs.call(peer, service, { tail, follow: false, signal: c.req.raw.signal })) out.push(item)
          return c.json(out)
        })()
      }
      return (async () => {
        const abort = new AbortController()
        const it = logs.call(peer, service, { tail, follow: true, signal: abort.signal })[Symbol.asyncIterator]()
        // An unknown service fails at once: answer it as an error, not as an empty stream.
        let next = it.next()
        let timer: NodeJS.Timeout | undefined
        const early = await Promise.race([next.then(() => undefined, (err: unknown) => ({ err })), new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 50)))])
        clearTimeout(timer)
        if (early !== undefined) throw early.err
        return streamSSE(c, async (s) => {
          s.onAbort(() => abort.abort())
          try {
            for (let r = await next; r.done !== true && !s.aborted; r = await next) {
              await s.writeSSE({ data: JSON.stringify(r.value) })
              next = it.next()
            }
          } finally {
            abort.abort()
            void it.return?.(undefined)
          }
        })
      })()
    })
  }
}

/** The events of a peer without followEvents: its list, then what onEvent reports. */
async function* followLocal(list: () => EventView[] | Promise<EventView[]>, onEvent: (fn: (e: EventView) => void) => () => void, signal: AbortSignal): AsyncGenerator<EventView> {
  const queue: EventView[] = []
  let wake: (() => void) | undefined
  const off = onEvent((e) => {
    queue.push(e)
    if (queue.length > 10_000) queue.splice(0, queue.length - 10_000)
    wake?.()
  })
  try {
    const first = await list()
    queue.unshift(...first.filter((e) => !queue.includes(e)))
    while (!signal.aborted) {
      const e = queue.shift()
      if (e !== undefined) {
        yield e
        continue
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done)
          wake = undefined
          resolve()
        }
        wake = done
        signal.addEventListener('abort', done, { once: true })
      })
    }
  } finally {
    off()
  }
}

function isFollow(v: string | undefined): boolean {
  return v === '1' || v === 'true'
}
