// The Docker adapter: the ContainerRuntime over dockerode (the only file importing it).
// Every engine error becomes a SkeinError with a runtime code; an engine that is down or goes away
// gives `engine-unavailable`, never a crash. The caller (the agent) retries.
import Docker from 'dockerode'
import type { Readable } from 'node:stream'
import { SkeinError } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import { JsonLines, LogDemuxer, cpuPercent, memoryBytes, parseEngineTime } from './docker-stream.ts'
import { PULL_STARTED, RUNTIME_ERROR_CODES as E } from './types.ts'
import type {
  CallOptions, ContainerEvent, ContainerInfo, ContainerRuntime, ContainerSpec, ContainerState, HealthStatus, PortBinding, PullProgress,
} from './types.ts'

/** Options of the Docker adapter. */
export interface DockerRuntimeOptions {
  /** The engine's unix socket. Default: `DOCKER_HOST` (unix:// or tcp://), else /var/run/docker.sock. */
  socketPath?: string
  logger: Logger
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND'])

interface EngineError { statusCode?: number; code?: string; json?: { message?: string } | null; message?: string; name?: string }

/** Creates the Docker runtime. Nothing is contacted until the first call. */
export function createDockerRuntime(opts: DockerRuntimeOptions): ContainerRuntime {
  const envHost = process.env['DOCKER_HOST']
  let docker: Docker
  let where: string
  if (opts.socketPath !== undefined) {
    docker = new Docker({ socketPath: opts.socketPath })
    where = `unix://${opts.socketPath}`
  } else if (envHost !== undefined && envHost !== '') {
    docker = new Docker() // dockerode reads DOCKER_HOST itself
    where = envHost
  } else {
    docker = new Docker({ socketPath: '/var/run/docker.sock' })
    where = 'unix:///var/run/docker.sock'
  }
  const log = opts.logger

  /** Maps anything dockerode throws to a SkeinError (abort errors pass through). */
  function fail(err: unknown, what: string, id?: string): never {
    if (err instanceof SkeinError) throw err
    const e = (err ?? {}) as EngineError
    if (e.name === 'AbortError') throw err
    const detail = e.json?.message ?? e.message ?? String(err)
    if ((e.code !== undefined && CONNECTION_CODES.has(e.code)) || /socket hang up/i.test(detail)) {
      throw new SkeinError(E.engineUnavailable, `the Docker engine at ${where} is unavailable (${e.code ?? detail}) while trying to ${what}`, {
        hint: `is dockerd running? DOCKER_HOST=${envHost ?? '(unset)'}`, cause: err,
      })
    }
    if (e.statusCode === 404) throw new SkeinError(E.notFound, `no such container${id === undefined ? '' : ` ${id}`}: ${detail}`, { cause: err })
    if (e.statusCode === 409 && what === 'create a container') {
      throw new SkeinError(E.nameConflict, `container name taken: ${detail}`, { hint: 'remove the old container first', cause: err })
    }
    throw new SkeinError(E.failed, `Docker could not ${what}: ${detail}`, { cause: err })
  }

  async function inspectRaw(id: string, signal?: AbortSignal): Promise<Docker.ContainerInspectInfo> {
    try {
      return await docker.getContainer(id).inspect(signal === undefined ? {} : { abortSignal: signal })
    } catch (err) {
      return fail(err, 'inspect a container', id)
    }
  }

  const runtime: ContainerRuntime = {
    async ping(o: CallOptions = {}) {
      try {
        o.signal?.throwIfAborted()
        await docker.ping()
      } catch (err) {
        fail(err, 'ping')
      }
    },

    async ensureImage(ref, o = {}) {
      try {
        await docker.getImage(ref).inspect()
        return
      } catch (err) {
        const e = err as EngineError
        if (e.statusCode !== 404) fail(err, `inspect image ${ref}`)
      }
      log.debug({ image: ref }, 'pulling image')
      o.onProgress?.({ image: ref, status: PULL_STARTED })
      try {
        const stream = (await docker.pull(ref, o.signal === undefined ? {} : { abortSignal: o.signal })) as Readable
        await new Promise<void>((resolve, reject) => {
          docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve()), (ev: { status?: string; id?: string; progressDetail?: { current?: number; total?: number }; error?: string }) => {
            const p: PullProgress = { image: ref, status: ev.status ?? ev.error ?? '' }
            if (ev.id !== undefined) p.layer = ev.id
            if (ev.progressDetail?.current !== undefined) p.current = ev.progressDetail.current
            if (ev.progressDetail?.total !== undefined) p.total = ev.progressDetail.total
            o.onProgress?.(p)
          })
        })
      } catch (err) {
        const e = (err ?? {}) as EngineError
        if (e.name === 'AbortError') throw err
        if (e.code !== undefined && CONNECTION_CODES.has(e.code)) fail(err, `pull image ${ref}`)
        const reason = e.json?.message ?? e.message ?? String(err)
        throw new SkeinError(E.imageUnavailable, `image ${ref} is not present and cannot be pulled: ${reason}`, {
          hint: 'check the name and the registry, or load the image on this host (docker load / docker import)', cause: err,
        })
      }
      log.debug({ image: ref }, 'pulled image')
    },

    async create(spec, o = {}) {
      try {
        const c = await docker.createContainer({ ...toCreateOptions(spec), ...(o.signal === undefined ? {} : { abortSignal: o.signal }) })
        return c.id
      } catch (err) {
        const e = (err ?? {}) as EngineError
        const detail = e.json?.message ?? e.message ?? ''
        if (e.statusCode === 404 && /image/i.test(detail)) {
          throw new SkeinError(E.imageUnavailable, `image ${spec.image} is not present: ${detail}`, { hint: 'call ensureImage first', cause: err })
        }
        return fail(err, 'create a container')
      }
    },

    async start(id, o = {}) {
      try {
        await docker.getContainer(id).start(o.signal === undefined ? {} : { abortSignal: o.signal })
      } catch (err) {
        if ((err as EngineError).statusCode === 304) return // already running
        fail(err, 'start a container', id)
      }
    },

    async stop(id, o = {}) {
      // Docker's grace is whole seconds: round up so a container always gets at least what was asked.
      const t = Math.max(0, Math.ceil((o.graceMs ?? 10_000) / 1000))
      try {
        await docker.getContainer(id).stop({ t, ...(o.signal === undefined ? {} : { abortSignal: o.signal }) })
      } catch (err) {
        if ((err as EngineError).statusCode === 304) return // already stopped
        fail(err, 'stop a container', id)
      }
    },

    async remove(id, o = {}) {
      try {
        await docker.getContainer(id).remove({ force: true, v: false, ...(o.signal === undefined ? {} : { abortSignal: o.signal }) })
      } catch (err) {
        if ((err as EngineError).statusCode === 404) return
        fail(err, 'remove a container', id)
      }
    },

    async list(o = {}) {
      let summaries: Docker.ContainerInfo[]
      try {
        summaries = await docker.listContainers({ all: true, filters: { label: labelFilter(o.labels) }, ...(o.signal === undefined ? {} : { abortSignal: o.signal }) })
      } catch (err) {
        return fail(err, 'list containers')
      }
      const infos = await Promise.all(summaries.map(async (s) => {
        try {
          return toInfo(await inspectRaw(s.Id, o.signal))
        } catch (err) {
          if (err instanceof SkeinError && err.code === E.notFound) return null // removed meanwhile
          throw err
        }
      }))
      return infos.filter((i): i is ContainerInfo => i !== null).sort((a, b) => a.name.localeCompare(b.name))
    },

    async inspect(id, o = {}) {
      return toInfo(await inspectRaw(id, o.signal))
    },

    async *logs(id, o = {}) {
      const follow = o.follow ?? false
      let raw: Buffer | Readable
      try {
        const base = { stdout: true, stderr: true, timestamps: true, ...(o.tail === undefined ? {} : { tail: o.tail }), ...(o.signal === undefined ? {} : { abortSignal: o.signal }) }
        const c = docker.getContainer(id)
        raw = follow ? ((await c.logs({ ...base, follow: true })) as Readable) : await c.logs({ ...base, follow: false })
      } catch (err) {
        if (o.signal?.aborted === true) return
        return fail(err, 'read logs', id)
      }
      const demux = new LogDemuxer({ timestamps: true, now: Date.now })
      if (Buffer.isBuffer(raw)) {
        yield* demux.push(raw)
        yield* demux.end()
        return
      }
      yield* readStream(raw, o.signal, (chunk) => demux.push(chunk), () => demux.end(), (err) => fail(err, 'follow logs', id))
    },

    async stats(id, o = {}) {
      try {
        const s = (await docker.getContainer(id).stats({ stream: false, ...(o.signal === undefined ? {} : { abortSignal: o.signal }) })) as unknown as Parameters<typeof cpuPercent>[0] & Parameters<typeof memoryBytes>[0]
        return { cpuPercent: cpuPercent(s), memoryBytes: memoryBytes(s) }
      } catch (err) {
        return fail(err, 'read stats', id)
      }
    },

    async *events(o = {}) {
      let stream: Readable
      try {
        stream = (await docker.getEvents({
          filters: { type: ['container'], label: labelFilter(o.labels) },
          ...(o.signal === undefined ? {} : { abortSignal: o.signal }),
        })) as unknown as Readable
      } catch (err) {
        if (o.signal?.aborted === true) return
        return fail(err, 'watch events')
      }
      const lines = new JsonLines()
      const parse = (chunk: Buffer) => lines.push(chunk).map(toEvent).filter((e): e is ContainerEvent => e !== null)
      yield* readStream(stream, o.signal, parse, () => [], (err) => fail(err, 'watch events'))
      // The engine closed the stream without being asked: it went away.
      if (o.signal?.aborted !== true) fail({ code: 'ECONNRESET', message: 'event stream ended' }, 'watch events')
    },
  }
  return runtime
}

/** Reads a stream to the end (or abort), mapping chunks to items. Errors after an abort end quietly. */
async function* readStream<T>(stream: Readable, signal: AbortSignal | undefined, map: (c: Buffer) => T[], end: () => T[], onError: (err: unknown) => never): AsyncGenerator<T> {
  const onAbort = () => stream.destroy()
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    for await (const chunk of stream) {
      yield* map(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer))
      if (signal?.aborted === true) return
    }
    yield* end()
  } catch (err) {
    if (signal?.aborted === true) return
    onError(err)
  } finally {
    signal?.removeEventListener('abort', onAbort)
    stream.destroy()
  }
}

function labelFilter(labels: Record<string, string> | undefined): string[] {
  return Object.entries(labels ?? {}).map(([k, v]) => (v === '' ? k : `${k}=${v}`))
}

function toCreateOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  const exposed: Record<string, object> = {}
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {}
  for (const p of spec.ports) {
    const key = `${p.containerPort}/${p.protocol}`
    exposed[key] = {}
    if (p.hostPort !== null) (bindings[key] ??= []).push({ HostIp: p.hostIp ?? '', HostPort: String(p.hostPort) })
  }
  const mounts: Docker.MountSettings[] = spec.mounts.map((m) => {
    if (m.type === 'tmpfs') {
      const tmpfs: { SizeBytes?: number; Mode?: number } = {}
      if (m.sizeBytes !== null) tmpfs.SizeBytes = m.sizeBytes
      if (m.mode !== null) tmpfs.Mode = m.mode
      // The types want both fields; the engine takes either alone.
      return { Type: 'tmpfs', Source: '', Target: m.target, TmpfsOptions: tmpfs as { SizeBytes: number; Mode: number } }
    }
    return { Type: m.type, Source: m.source ?? '', Target: m.target, ReadOnly: m.readOnly }
  })
  const h = spec.healthcheck
  return {
    name: spec.name,
    Image: spec.image,
    ...(spec.command === null ? {} : { Cmd: spec.command }),
    ...(spec.entrypoint === null ? {} : { Entrypoint: spec.entrypoint }),
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    ...(spec.workingDir === null ? {} : { WorkingDir: spec.workingDir }),
    ...(spec.user === null ? {} : { User: spec.user }),
    Labels: spec.labels,
    ExposedPorts: exposed,
    ...(h === null ? {} : { Healthcheck: { Test: h.test, Interval: h.intervalNs, Timeout: h.timeoutNs, Retries: h.retries, StartPeriod: h.startPeriodNs } }),
    HostConfig: {
      // Always `no`: the agent restarts containers itself (see ContainerSpec in types.ts).
      RestartPolicy: { Name: 'no' },
      PortBindings: bindings,
      NetworkMode: spec.network,
      Mounts: mounts,
      ...(spec.memoryBytes === null ? {} : { Memory: spec.memoryBytes }),
      ...(spec.nanoCpus === null ? {} : { NanoCpus: spec.nanoCpus }),
      ...(spec.pidsLimit === null ? {} : { PidsLimit: spec.pidsLimit }),
    },
  }
}

const STATES = new Set<ContainerState>(['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead'])

function toHealth(s: string | undefined): HealthStatus {
  return s === 'starting' || s === 'healthy' || s === 'unhealthy' ? s : 'none'
}

function toInfo(i: Docker.ContainerInspectInfo): ContainerInfo {
  const state = (STATES.has(i.State.Status as ContainerState) ? i.State.Status : 'dead') as ContainerState
  const startedAt = parseEngineTime(i.State.StartedAt)
  const ports: PortBinding[] = []
  const bound = (i.HostConfig.PortBindings ?? {}) as Record<string, { HostIp?: string; HostPort?: string }[] | null>
  const exposed = Object.keys(i.Config.ExposedPorts ?? {})
  for (const key of new Set([...exposed, ...Object.keys(bound)])) {
    const [port, proto] = key.split('/')
    const b = bound[key]?.[0]
    ports.push({
      containerPort: Number(port), protocol: proto === 'udp' ? 'udp' : 'tcp',
      hostPort: b?.HostPort ? Number(b.HostPort) : null, hostIp: b?.HostIp ? b.HostIp : null,
    })
  }
  ports.sort((a, b) => a.containerPort - b.containerPort)
  return {
    id: i.Id,
    name: i.Name.replace(/^\//, ''),
    image: i.Config.Image,
    labels: i.Config.Labels ?? {},
    state,
    exitCode: state === 'running' || startedAt === null ? null : i.State.ExitCode,
    startedAt,
    finishedAt: state === 'running' ? null : parseEngineTime(i.State.FinishedAt),
    health: toHealth(i.State.Health?.Status),
    restartCount: i.RestartCount,
    oomKilled: i.State.OOMKilled,
    ports,
    ip: state === 'running' ? ipOf(i.NetworkSettings as RawNetworkSettings | undefined) : null,
  }
}

interface RawNetworkSettings { IPAddress?: string; Networks?: Record<string, { IPAddress?: string } | null> | null }

/** The container's own address: the default bridge's, else the first network's that has one. */
function ipOf(n: RawNetworkSettings | null | undefined): string | null {
  if (n === undefined || n === null) return null
  if (typeof n.IPAddress === 'string' && n.IPAddress !== '') return n.IPAddress
  for (const net of Object.values(n.Networks ?? {})) if (typeof net?.IPAddress === 'string' && net.IPAddress !== '') return net.IPAddress
  return null
}

interface RawEvent { Type?: string; Action?: string; id?: string; timeNano?: number; time?: number; Actor?: { ID?: string; Attributes?: Record<string, string> } }

function toEvent(x: unknown): ContainerEvent | null {
  const ev = x as RawEvent
  if (ev.Type !== 'container' || ev.Action === undefined) return null
  const [action, arg] = ev.Action.split(': ')
  if (action !== 'create' && action !== 'start' && action !== 'die' && action !== 'oom' && action !== 'health_status' && action !== 'destroy') return null
  const attrs = { ...(ev.Actor?.Attributes ?? {}) }
  const name = attrs['name'] ?? ''
  const exit = attrs['exitCode']
  // Attributes mix labels with name/image/exitCode; keep only the labels.
  for (const k of ['name', 'image', 'exitCode', 'signal', 'execDuration']) delete attrs[k]
  const out: ContainerEvent = {
    action, id: ev.Actor?.ID ?? ev.id ?? '', name, labels: attrs,
    time: ev.timeNano !== undefined ? Math.floor(ev.timeNano / 1e6) : (ev.time ?? 0) * 1000,
  }
  if (action === 'die' && exit !== undefined) out.exitCode = Number(exit)
  if (action === 'health_status') out.health = toHealth(arg)
  return out
}
