// An in-memory ContainerRuntime for the simulation and unit tests: deterministic (ids from a
// counter, times from the injected clock) and controllable (crash a container, make an image
// unavailable, take the engine down, set health and stats).
//
// Containers "run" a tiny model of their command: for `sh -c SCRIPT`, the statements `echo TEXT`
// (with `>&2` for stderr) print at start, `exit N` exits at once, and `trap ... TERM` makes a stop
// graceful (exit 0 instead of 137). A script containing a long-running command (sleep, httpd, wait,
// nc, tail, while) keeps running; otherwise it exits 0 after its echoes. Any other command runs until
// stopped. Healthchecks turn `healthy` at start, or `unhealthy` when the test mentions `false` or `exit 1`.
// A running container's address is 127.0.0.1 unless set (so tests can probe a loopback server).
// Pulls: `fake/pullable*` images pull at once; `setPull` scripts a pull with layers and progress, or
// one that fails part-way.
import type { Clock } from '../core/clock.ts'
import { SkeinError } from '../core/errors.ts'
import { PULL_STARTED, RUNTIME_ERROR_CODES as E } from './types.ts'
import type { ContainerEvent, ContainerInfo, ContainerRuntime, ContainerSpec, ContainerStats, HealthStatus, LogLine, PullProgress } from './types.ts'

/** A scripted pull (see `setPull`). */
export interface FakePull {
  /** Size in bytes of each layer, downloaded in two halves. */
  layers: number[]
  /** Fail after this many layers (with `reason`); absent: the pull succeeds. */
  failAfter?: number
  reason?: string
  /** Runs before each download step: e.g. advance a manual clock, or wait. */
  between?: () => void | Promise<void>
}

/** The fake runtime: the interface plus the controls. */
export interface FakeRuntime extends ContainerRuntime {
  /** Makes an image present (as if pulled or loaded). */
  addImage(ref: string): void
  /** Makes an image impossible to pull, with this reason (it is also removed if present). */
  setImageUnavailable(ref: string, reason?: string): void
  /** Scripts the next pulls of `ref` (the image is removed if present). */
  setPull(ref: string, pull: FakePull): void
  /** Sets the address a container reports while it runs (default 127.0.0.1; null: none). */
  setIp(id: string, ip: string | null): void
  /** Takes the engine down (every call throws `engine-unavailable`, streams end with it) or back up. */
  setEngineDown(down: boolean): void
  /** The container's process exits with this code (default 137, as if killed). */
  crash(id: string, exitCode?: number): void
  /** Sets the health of a running container and emits `health_status`. */
  setHealth(id: string, health: HealthStatus): void
  /** Sets what `stats` reports. */
  setStats(id: string, stats: ContainerStats): void
  /** The container prints a line. */
  emitLog(id: string, stream: 'stdout' | 'stderr', text: string): void
  /** Every call made, in order, as `method id-or-ref` (for assertions). */
  readonly calls: string[]
}

interface Box {
  info: ContainerInfo
  spec: ContainerSpec
  lines: LogLine[]
  stats: ContainerStats
  graceful: boolean
  watchers: Set<() => void>
  ip: string | null
}

/** A queue with one waiting reader: the plumbing of the fake's async iterables. */
class Channel<T> {
  #items: T[] = []
  #wake: (() => void) | null = null
  #closed: { err: unknown } | null = null
  push(x: T): void {
    this.#items.push(x)
    this.#wake?.()
  }
  close(err?: unknown): void {
    this.#closed = { err }
    this.#wake?.()
  }
  async *drain(signal?: AbortSignal): AsyncGenerator<T> {
    const onAbort = () => this.close()
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      for (;;) {
        const next = this.#items.shift()
        if (next !== undefined) {
          yield next
          continue
        }
        if (this.#closed !== null) {
          if (this.#closed.err !== undefined && signal?.aborted !== true) throw this.#closed.err
          return
        }
        await new Promise<void>((resolve) => (this.#wake = resolve))
        this.#wake = null
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }
}

const LONG_RUNNING = /^(sleep|httpd|wait|nc|tail|while|cat)\b|&\s*wait/

/** Creates a fake runtime. `images`: present from the start (default `local/busybox:1`). */
export function createFakeRuntime(opts: { clock: Clock; images?: string[] }): FakeRuntime {
  const clock = opts.clock
  const images = new Set(opts.images ?? ['local/busybox:1'])
  const unavailable = new Map<string, string>()
  const scripted = new Map<string, FakePull>()
  const boxes = new Map<string, Box>()
  const subscribers = new Set<{ labels: Record<string, string>; ch: Channel<ContainerEvent> }>()
  const calls: string[] = []
  let down = false
  let seq = 0

  const engineDown = () => new SkeinError(E.engineUnavailable, 'the fake engine is unavailable', { hint: 'is dockerd running? DOCKER_HOST=(fake)' })
  const check = (call: string, signal?: AbortSignal) => {
    calls.push(call)
    signal?.throwIfAborted()
    if (down) throw engineDown()
  }
  const find = (id: string): Box => {
    const b = boxes.get(id) ?? [...boxes.values()].find((x) => x.info.name === id || (id.length >= 6 && x.info.id.startsWith(id)))
    if (b === undefined) throw new SkeinError(E.notFound, `no such container ${id}`)
    return b
  }
  const matches = (labels: Record<string, string>, want: Record<string, string> | undefined) =>
    Object.entries(want ?? {}).every(([k, v]) => labels[k] !== undefined && (v === '' || labels[k] === v))
  const emit = (b: Box, action: ContainerEvent['action'], extra: Partial<ContainerEvent> = {}) => {
    const ev: ContainerEvent = { action, id: b.info.id, name: b.info.name, labels: { ...b.info.labels }, time: clock.now(), ...extra }
    for (const s of subscribers) if (matches(ev.labels, s.labels)) s.ch.push(ev)
  }
  const print = (b: Box, stream: 'stdout' | 'stderr', text: string) => {
    b.lines.push({ stream, time: clock.now(), text })
    for (const w of b.watchers) w()
  }
  const exit = (b: Box, code: number) => {
    if (b.info.state !== 'running') return
    b.info.state = 'exited'
    b.info.exitCode = code
    b.info.finishedAt = clock.now()
    emit(b, 'die', { exitCode: code })
    for (const w of b.watchers) w()
  }
  const copy = (b: Box): ContainerInfo => ({ ...b.info, labels: { ...b.info.labels }, ports: b.info.ports.map((p) => ({ ...p })), ip: b.info.state === 'running' ? b.ip : null })
  const cannotPull = (ref: string, reason: string) =>
    new SkeinError(E.imageUnavailable, `image ${ref} is not present and cannot be pulled: ${reason}`, { hint: 'check the name and the registry, or load the image on this host' })

  /** Plays a pull in Docker's progress words. */
  const pull = async (ref: string, plan: FakePull, report: (p: Omit<PullProgress, 'image'>) => void, signal?: AbortSignal) => {
    const colon = ref.lastIndexOf(':')
    report({ status: `Pulling from ${colon > 0 ? ref.slice(0, colon) : ref}`, layer: colon > 0 ? ref.slice(colon + 1) : 'latest' })
    const layer = (n: number) => `layer${n}`
    plan.layers.forEach((_, n) => report({ status: 'Pulling fs layer', layer: layer(n) }))
    for (const [n, bytes] of plan.layers.entries()) {
      if (plan.failAfter === n) throw cannotPull(ref, plan.reason ?? 'unexpected EOF')
      for (const current of [Math.floor(bytes / 2), bytes]) {
        await plan.between?.()
        signal?.throwIfAborted()
        if (down) throw engineDown()
        report({ status: 'Downloading', layer: layer(n), current, total: bytes })
      }
      report({ status: 'Download complete', layer: layer(n) })
      report({ status: 'Extracting', layer: layer(n), current: bytes, total: bytes })
      report({ status: 'Pull complete', layer: layer(n) })
    }
    if (plan.failAfter !== undefined && plan.failAfter >= plan.layers.length) throw cannotPull(ref, plan.reason ?? 'unexpected EOF')
    report({ status: 'Digest: sha256:fake' })
    report({ status: `Status: Downloaded newer image for ${ref}` })
  }

  /** Runs the command model at start. */
  const run = (b: Box) => {
    const argv = [...(b.spec.entrypoint ?? []), ...(b.spec.command ?? [])]
    const script = argv[0] === 'sh' && argv[1] === '-c' ? argv[2] : undefined
    if (script === undefined) return
    let forever = false
    for (const raw of script.split(/;|&&|\n/)) {
      const st = raw.trim()
      if (st.startsWith('trap ') && /TERM/.test(st)) b.graceful = true
      const echo = /^echo\s+(.*?)(\s*>&2)?$/.exec(st)
      if (echo) print(b, echo[2] === undefined ? 'stdout' : 'stderr', unquote(echo[1] ?? ''))
      const ex = /^exit\s+(\d+)$/.exec(st)
      if (ex) return exit(b, Number(ex[1]))
      if (LONG_RUNNING.test(st)) forever = true
    }
    if (!forever) exit(b, 0)
  }

  const rt: FakeRuntime = {
    calls,
    async ping(o = {}) {
      check('ping', o.signal)
    },
    async ensureImage(ref, o = {}) {
      check(`ensureImage ${ref}`, o.signal)
      if (images.has(ref)) return
      const report = (p: Omit<PullProgress, 'image'>) => o.onProgress?.({ image: ref, ...p })
      report({ status: PULL_STARTED })
      const plan = scripted.get(ref) ?? (!unavailable.has(ref) && ref.startsWith('fake/pullable') ? { layers: [1 << 20] } : undefined)
      if (plan === undefined) throw cannotPull(ref, unavailable.get(ref) ?? 'pull access denied: repository does not exist or may require authorization')
      await pull(ref, plan, report, o.signal)
      images.add(ref)
    },
    async create(spec, o = {}) {
      check(`create ${spec.name}`, o.signal)
      if (!images.has(spec.image)) throw new SkeinError(E.imageUnavailable, `image ${spec.image} is not present`, { hint: 'call ensureImage first' })
      if ([...boxes.values()].some((b) => b.info.name === spec.name)) throw new SkeinError(E.nameConflict, `container name taken: ${spec.name}`, { hint: 'remove the old container first' })
      seq += 1
      const id = `fake${String(seq).padStart(60, '0')}`
      const info: ContainerInfo = {
        id, name: spec.name, image: spec.image, labels: { ...spec.labels }, state: 'created', exitCode: null, startedAt: null, finishedAt: null,
        health: 'none', restartCount: 0, oomKilled: false, ip: null, ports: spec.ports.map((p) => ({ ...p })).sort((a, b) => a.containerPort - b.containerPort),
      }
      const box: Box = {
        info, spec: structuredClone(spec), lines: [], stats: { cpuPercent: 0, memoryBytes: 1 << 20 }, graceful: false, watchers: new Set(),
        ip: spec.network === 'bridge' ? '127.0.0.1' : null,
      }
      boxes.set(id, box)
      emit(box, 'create')
      return id
    },
    async start(id, o = {}) {
      check(`start ${id}`, o.signal)
      const b = find(id)
      if (b.info.state === 'running') return
      b.info.state = 'running'
      b.info.exitCode = null
      b.info.finishedAt = null
      b.info.oomKilled = false
      b.info.startedAt = clock.now()
      const h = b.spec.healthcheck
      b.info.health = h === null || h.test[0] === 'NONE' ? 'none' : 'starting'
      emit(b, 'start')
      if (b.info.health === 'starting' && h !== null) {
        rt.setHealth(id, /\bfalse\b|exit 1/.test(h.test.join(' ')) ? 'unhealthy' : 'healthy')
      }
      run(b)
    },
    async stop(id, o = {}) {
      check(`stop ${id}`, o.signal)
      const b = find(id)
      exit(b, b.graceful ? 0 : 137)
    },
    async remove(id, o = {}) {
      check(`remove ${id}`, o.signal)
      let b: Box
      try {
        b = find(id)
      } catch {
        return
      }
      exit(b, 137)
      boxes.delete(b.info.id)
      emit(b, 'destroy')
      for (const w of b.watchers) w()
    },
    async list(o = {}) {
      check('list', o.signal)
      return [...boxes.values()].filter((b) => matches(b.info.labels, o.labels)).map(copy).sort((a, b) => a.name.localeCompare(b.name))
    },
    async inspect(id, o = {}) {
      check(`inspect ${id}`, o.signal)
      return copy(find(id))
    },
    async *logs(id, o = {}) {
      check(`logs ${id}`, o.signal)
      const b = find(id)
      const start = o.tail === undefined ? 0 : Math.max(0, b.lines.length - o.tail)
      const snapshot = b.lines.slice(start)
      yield* snapshot
      if (o.follow !== true) return
      const ch = new Channel<LogLine>()
      let seen = b.lines.length
      const watcher = () => {
        while (seen < b.lines.length) ch.push(b.lines[seen++] as LogLine)
        if (b.info.state !== 'running' || !boxes.has(b.info.id)) ch.close()
        if (down) ch.close(engineDown())
      }
      b.watchers.add(watcher)
      if (b.info.state !== 'running') ch.close()
      try {
        yield* ch.drain(o.signal)
      } finally {
        b.watchers.delete(watcher)
      }
    },
    async stats(id, o = {}) {
      check(`stats ${id}`, o.signal)
      const b = find(id)
      return b.info.state === 'running' ? { ...b.stats } : { cpuPercent: 0, memoryBytes: 0 }
    },
    async *events(o = {}) {
      check('events', o.signal)
      const sub = { labels: o.labels ?? {}, ch: new Channel<ContainerEvent>() }
      subscribers.add(sub)
      try {
        yield* sub.ch.drain(o.signal)
      } finally {
        subscribers.delete(sub)
      }
    },

    addImage(ref) {
      images.add(ref)
      unavailable.delete(ref)
      scripted.delete(ref)
    },
    setImageUnavailable(ref, reason = 'manifest unknown') {
      images.delete(ref)
      scripted.delete(ref)
      unavailable.set(ref, reason)
    },
    setPull(ref, plan) {
      images.delete(ref)
      unavailable.delete(ref)
      scripted.set(ref, { ...plan, layers: [...plan.layers] })
    },
    setIp(id, ip) {
      find(id).ip = ip
    },
    setEngineDown(d) {
      down = d
      if (d) {
        for (const s of subscribers) s.ch.close(engineDown())
        for (const b of boxes.values()) for (const w of b.watchers) w()
      }
    },
    crash(id, exitCode = 137) {
      exit(find(id), exitCode)
    },
    setHealth(id, health) {
      const b = find(id)
      if (b.info.health === health) return
      b.info.health = health
      emit(b, 'health_status', { health })
    },
    setStats(id, stats) {
      find(id).stats = { ...stats }
    },
    emitLog(id, stream, text) {
      print(find(id), stream, text)
    },
  }
  return rt
}

function unquote(s: string): string {
  const t = s.trim()
  if (t.length >= 2 && (t[0] === '"' || t[0] === "'") && t[t.length - 1] === t[0]) return t.slice(1, -1)
  return t
}
