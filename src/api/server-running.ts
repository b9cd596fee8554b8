import type { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { SkeinError } from '../core/errors.ts'
import { DrainRequestSchema, type EventView, type RunningApi } from './running.ts'

/**
 * The routes of the running flow (docs/api.md): POST /v1/nodes/drain, GET /v1/events and
 * GET /v1/logs. With `follow=1`, events and logs are server-sent events (`data: <JSON view>`),
 * until the client goes away (or, for logs, every followed container has stopped).
 */
export function registerRunningRoutes(app: Hono, peer: RunningApi): void {
  const { drain, events, onEvent, logs } = peer
  if (drain !== undefined) {
    app.post('/v1/nodes/drain', async (c) => {
      const body = DrainRequestSchema.safeParse(await c.req.json().catch(() => undefined))
      if (!body.success) throw new SkeinError('bad-request', 'the body must be JSON: { "host": "<node name or peer id>", "drained": true }')
      return c.json(await drain.call(peer, body.data.host, body.data.drained))
    })
  }
  if (events !== undefined) {
    app.get('/v1/events', (c) => {
      if (!isFollow(c.req.query('follow')) || onEvent === undefined) return c.json(events.call(peer))
      return streamSSE(c, async (s) => {
        const queue: EventView[] = [...events.call(peer)]
        let wake: (() => void) | undefined
        const off = onEvent.call(peer, (e) => {
          queue.push(e)
          if (queue.length > 10_000) queue.splice(0, queue.length - 10_000)
          wake?.()
        })
        s.onAbort(() => wake?.())
        try {
          while (!s.aborted) {
            const e = queue.shift()
            if (e !== undefined) {
              await s.writeSSE({ data: JSON.stringify(e) })
              continue
            }
            // A comment line now and then finds a client that went away.
            await new Promise<void>((resolve) => {
              const t = setTimeout(resolve, 15_000)
              wake = () => {
                clearTimeout(t)
                resolve()
              }
            })
            wake = undefined
            if (queue.length === 0 && !s.aborted) await s.write(': keep-alive\n\n')
          }
        } finally {
          off()
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
      return streamSSE(c, async (s) => {
        const abort = new AbortController()
        s.onAbort(() => abort.abort())
        for await (const item of logs.call(peer, service, { tail, follow: true, signal: abort.signal })) {
          if (s.aborted) break
          await s.writeSSE({ data: JSON.stringify(item) })
        }
        abort.abort()
      })
    })
  }
}

function isFollow(v: string | undefined): boolean {
  return v === '1' || v === 'true'
}
