import { createHash, timingSafeEqual } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'
import { Hono, type Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { SkeinError, errorMessage } from '../core/errors.ts'
import { formatHostPort, parseHostPort } from '../core/hostport.ts'
import type { Logger } from '../core/logger.ts'
import { VERSION } from '../core/version.ts'
import { registerRunningRoutes } from './server-running.ts'
import {
  ApplyRequestSchema, DebugBlockRequestSchema, DebugProposeRequestSchema, RemoveServicesRequestSchema, RemoveVoterRequestSchema, ScaleRequestSchema,
  type ApiErrorBody, type HealthView, type PeerApi,
} from './types.ts'

/**
 * The HTTP API (docs/api.md): hono on Node's HTTP server. Every route but GET /v1/health needs
 * `Authorization: Bearer <token>`; errors are `{ error: { code, message, hint? } }`.
 */
export interface ApiServerInit {
  /** `host:port` to listen on; port 0 picks a free port. */
  listen: string
  /** The bearer token clients must present. */
  token: string
  peer: PeerApi
  logger: Logger
}

/** A listening API server. */
export interface ApiServer {
  /** The bound `host:port` (with the real port when 0 was asked for). */
  readonly address: string
  /** Stop accepting connections; in-flight requests finish first. */
  close(): Promise<void>
}

/** HTTP statuses of SkeinError codes that are not server failures. */
const ERROR_STATUS: Record<string, ContentfulStatusCode> = {
  usage: 400,
  ambiguous: 400,
  'not-a-voter': 404,
  'not-leader': 409,
  'no-leader': 503,
  'remove-timeout': 504,
  'proposal-timeout': 504,
  'bad-request': 400,
  'invalid-spec': 400,
  'global-service': 400,
  'unknown-service': 404,
  'unknown-host': 404,
  busy: 503,
  'leader-unreachable': 504,
  'peer-timeout': 504,
  conflict: 409,
  'state-stopped': 503,
}

/** The error answer for a status and code. */
function fail(c: Context, status: ContentfulStatusCode, code: string, message: string, hint?: string): Response {
  const body: ApiErrorBody = { error: hint === undefined ? { code, message } : { code, message, hint } }
  return c.json(body, status)
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/** Constant-time comparison of a presented token with the expected one. */
export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected))
}

/** The hono app alone (no socket): for tests and for embedding. */
export function createApiApp(init: Omit<ApiServerInit, 'listen'>): Hono {
  const log = init.logger.child({ component: 'api' })
  const app = new Hono()

  app.get('/v1/health', (c) => c.json({ ok: true, version: VERSION } satisfies HealthView))

  app.use('*', async (c, next) => {
    if (c.req.path === '/v1/health') return await next()
    const header = c.req.header('authorization')
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (m === null || m[1] === undefined) {
      c.header('WWW-Authenticate', 'Bearer realm="skein"')
      return fail(c, 401, 'unauthorized', 'this API needs a bearer token', 'send Authorization: Bearer <contents of api.token>')
    }
    if (!tokenMatches(m[1], init.token)) {
      c.header('WWW-Authenticate', 'Bearer realm="skein", error="invalid_token"')
      return fail(c, 401, 'unauthorized', 'the API token is wrong')
    }
    await next()
  })

  app.get('/v1/status', (c) => c.json(init.peer.status()))
  app.get('/v1/nodes', (c) => c.json(init.peer.nodes()))
  app.post('/v1/leave', async (c) => c.json(await init.peer.leave()))
  app.get('/v1/voters', async (c) => c.json(await init.peer.voters()))
  app.post('/v1/voters/remove', async (c) => {
    const body = RemoveVoterRequestSchema.safeParse(await c.req.json().catch(() => undefined))
    if (!body.success) return fail(c, 400, 'bad-request', 'the body must be JSON: { "name": "<node name or peer id>", "force": false }')
    return c.json(await init.peer.removeVoter(body.data.name, { force: body.data.force ?? false }))
  })
  const debugPropose = init.peer.debugPropose?.bind(init.peer)
  if (debugPropose !== undefined) {
    app.post('/v1/debug/propose', async (c) => {
      const body = DebugProposeRequestSchema.safeParse(await c.req.json().catch(() => ({})))
      if (!body.success) return fail(c, 400, 'bad-request', 'the body must be JSON: { "count": 1..100000, "window": 1..4096 }')
      return c.json(await debugPropose(body.data.count ?? 1, body.data.window ?? 1))
    })
  }

  registerStateRoutes(app, init.peer)
  registerRunningRoutes(app, init.peer)

  app.notFound((c) => fail(c, 404, 'not-found', `no route ${c.req.method} ${c.req.path}`))
  app.onError((err, c) => {
    if (err instanceof SkeinError) {
      log.warn({ code: err.code, path: c.req.path }, err.message)
      return fail(c, ERROR_STATUS[err.code] ?? 500, err.code, err.message, err.hint)
    }
    log.error({ err: errorMessage(err), path: c.req.path }, 'API handler failed')
    return fail(c, 500, 'internal', `internal error: ${errorMessage(err)}`)
  })
  return app
}

/** The desired-state routes (docs/api.md), present when the peer has desired state. */
function registerStateRoutes(app: Hono, peer: PeerApi): void {
  const { services, service, history, plan, apply, removeServices, scale, replicas, debugBlock, debugUnblock } = peer
  const stackHint = 'the body must be JSON: { "stack": { "name": "...", "services": [ ... ] }, "prune": false }'
  if (services !== undefined) app.get('/v1/services', async (c) => c.json(await services.call(peer)))
  if (service !== undefined) app.get('/v1/services/:name', (c) => c.json(service.call(peer, c.req.param('name'))))
  if (history !== undefined) app.get('/v1/services/:name/history', (c) => c.json(history.call(peer, c.req.param('name'))))
  if (replicas !== undefined) app.get('/v1/replicas', async (c) => c.json(await replicas.call(peer, c.req.query('service') || undefined)))
  if (plan !== undefined) {
    app.post('/v1/plan', async (c) => {
      const body = ApplyRequestSchema.safeParse(await c.req.json().catch(() => undefined))
      if (!body.success) return fail(c, 400, 'bad-request', stackHint)
      return c.json(plan.call(peer, body.data.stack, body.data.prune ?? false))
    })
  }
  if (apply !== undefined) {
    app.post('/v1/apply', async (c) => {
      const body = ApplyRequestSchema.safeParse(await c.req.json().catch(() => undefined))
      if (!body.success) return fail(c, 400, 'bad-request', stackHint)
      return c.json(await apply.call(peer, body.data.stack, body.data.prune ?? false))
    })
  }
  if (removeServices !== undefined) {
    app.post('/v1/services/remove', async (c) => {
      const body = RemoveServicesRequestSchema.safeParse(await c.req.json().catch(() => undefined))
      if (!body.success) return fail(c, 400, 'bad-request', 'the body must be JSON: { "names": ["<service>", ...] }')
      return c.json(await removeServices.call(peer, body.data.names))
    })
  }
  if (scale !== undefined) {
    app.post('/v1/services/scale', async (c) => {
      const body = ScaleRequestSchema.safeParse(await c.req.json().catch(() => undefined))
      if (!body.success) return fail(c, 400, 'bad-request', 'the body must be JSON: { "services": [{ "name": "<service>", "replicas": 0..1000000 }, ...] }')
      return c.json(await scale.call(peer, body.data.services))
    })
  }
  if (debugBlock !== undefined && debugUnblock !== undefined) {
    app.post('/v1/debug/block', async (c) => {
      const body = DebugBlockRequestSchema.safeParse(await c.req.json().catch(() => undefined))
      if (!body.success || body.data.peers === undefined) return fail(c, 400, 'bad-request', 'the body must be JSON: { "peers": ["<peer id>", ...] }')
      return c.json(debugBlock.call(peer, body.data.peers))
    })
    app.post('/v1/debug/unblock', async (c) => {
      const body = DebugBlockRequestSchema.safeParse(await c.req.json().catch(() => ({})))
      if (!body.success) return fail(c, 400, 'bad-request', 'the body must be JSON: { "peers": ["<peer id>", ...] } (none: all)')
      return c.json(debugUnblock.call(peer, body.data.peers))
    })
  }
}

/**
 * Start the API server. Resolves once it listens; rejects with SkeinError 'port-in-use' if the
 * address is taken, 'bad-address' if it is not on this host, 'permission' for privileged ports.
 */
export async function createApiServer(init: ApiServerInit): Promise<ApiServer> {
  const hp = parseHostPort(init.listen, { what: 'API address' })
  const app = createApiApp(init)
  const server = createAdaptorServer({ fetch: app.fetch }) as Server
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      reject(listenError(init.listen, err))
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve()
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(hp.port, hp.host)
  })
  server.on('error', (err) => init.logger.error({ err: errorMessage(err) }, 'API server error'))
  const info = server.address() as AddressInfo
  const address = formatHostPort({ host: info.address, port: info.port })
  init.logger.debug({ address }, 'API listening')
  let closing: Promise<void> | undefined
  return {
    address,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
      return closing
    },
  }
}

function listenError(listen: string, err: NodeJS.ErrnoException): SkeinError {
  switch (err.code) {
    case 'EADDRINUSE':
      return new SkeinError('port-in-use', `the API address ${listen} is already in use`, { hint: 'is another skein agent running? pass --api HOST:PORT', cause: err })
    case 'EADDRNOTAVAIL':
      return new SkeinError('bad-address', `cannot listen on ${listen}: that address is not on this host`, { hint: 'pass --api with a local address', cause: err })
    case 'EACCES':
      return new SkeinError('permission', `no permission to listen on ${listen}`, { hint: 'ports below 1024 need root', cause: err })
    default:
      return new SkeinError('listen-failed', `cannot listen on ${listen}: ${err.message}`, { cause: err })
  }
}
