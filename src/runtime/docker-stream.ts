// Pure helpers for the Docker adapter: demultiplexing Docker's log framing, reading newline-
// delimited JSON, parsing engine timestamps, and summing up pull progress. No dockerode here, so
// they are unit-testable.
import type { LogLine, PullProgress } from './types.ts'

/**
 * Demultiplexes Docker's attach/logs framing (a non-TTY container): each frame is an 8-byte header
 * — stream type (1 stdout, 2 stderr), three zero bytes, payload size (u32 big-endian) — then the
 * payload. Frames do not align with lines or with chunks; feed chunks in, take whole lines out.
 * With `timestamps`, every line starts with an RFC 3339 time and a space.
 */
export class LogDemuxer {
  #pending: Buffer = Buffer.alloc(0)
  #partial: { stdout: string; stderr: string } = { stdout: '', stderr: '' }
  readonly #timestamps: boolean
  readonly #now: () => number

  constructor(opts: { timestamps: boolean; now: () => number }) {
    this.#timestamps = opts.timestamps
    this.#now = opts.now
  }

  /** Feeds a chunk; returns the complete lines it finished. */
  push(chunk: Buffer): LogLine[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    const out: LogLine[] = []
    while (this.#pending.length >= 8) {
      const size = this.#pending.readUInt32BE(4)
      if (this.#pending.length < 8 + size) break
      const type = this.#pending[0]
      const payload = this.#pending.subarray(8, 8 + size).toString('utf8')
      this.#pending = this.#pending.subarray(8 + size)
      // Type 0 (stdin) never appears in logs; treat anything but 2 as stdout.
      const stream = type === 2 ? 'stderr' : 'stdout'
      const text = this.#partial[stream] + payload
      const parts = text.split('\n')
      this.#partial[stream] = parts.pop() ?? ''
      for (const line of parts) out.push(this.#line(stream, line))
    }
    return out
  }

  /** Flushes unterminated lines at the end of the stream. */
  end(): LogLine[] {
    const out: LogLine[] = []
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.#partial[stream] !== '') out.push(this.#line(stream, this.#partial[stream]))
      this.#partial[stream] = ''
    }
    return out
  }

  #line(stream: 'stdout' | 'stderr', raw: string): LogLine {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (!this.#timestamps) return { stream, time: this.#now(), text: line }
    const space = line.indexOf(' ')
    const time = space > 0 ? parseEngineTime(line.slice(0, space)) : null
    if (time === null) return { stream, time: this.#now(), text: line }
    return { stream, time, text: line.slice(space + 1) }
  }
}

/**
 * Parses an engine time (RFC 3339 with up to nanoseconds) to epoch milliseconds. Docker's "never"
 * (`0001-01-01T00:00:00Z`) and anything unparseable give null.
 */
export function parseEngineTime(s: string | undefined): number | null {
  if (s === undefined || s === '' || s.startsWith('0001-01-01')) return null
  // Date.parse handles milliseconds only: cut the fraction to 3 digits.
  const t = Date.parse(s.replace(/(\.\d{3})\d+/, '$1'))
  return Number.isFinite(t) ? t : null
}

/** Splits newline-delimited JSON arriving in arbitrary chunks. Malformed lines are skipped. */
export class JsonLines {
  #buf = ''
  /** Feeds a chunk; returns the objects of its complete lines. */
  push(chunk: Buffer | string): unknown[] {
    this.#buf += typeof chunk === 'string' ? chunk : chunk.toString('utf8')
    const parts = this.#buf.split('\n')
    this.#buf = parts.pop() ?? ''
    const out: unknown[] = []
    for (const p of parts) {
      if (p.trim() === '') continue
      try {
        out.push(JSON.parse(p))
      } catch {
        // skip
      }
    }
    return out
  }
}

/** One-shot CPU percent from Docker's two samples (`cpu_stats` and `precpu_stats`), as `docker stats` does. */
export function cpuPercent(s: {
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number }
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number }
}): number {
  const cpu = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0)
  const sys = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0)
  const cpus = s.cpu_stats?.online_cpus ?? s.cpu_stats?.cpu_usage?.percpu_usage?.length ?? 1
  if (cpu <= 0 || sys <= 0) return 0
  return (cpu / sys) * cpus * 100
}

/** Memory in use without the page cache, as `docker stats` shows it (cgroup v1 `cache`, v2 `inactive_file`). */
export function memoryBytes(s: { memory_stats?: { usage?: number; stats?: Record<string, number> } }): number {
  const usage = s.memory_stats?.usage ?? 0
  const st = s.memory_stats?.stats ?? {}
  const cache = st['total_inactive_file'] ?? st['inactive_file'] ?? st['cache'] ?? 0
  return Math.max(0, usage - (cache < usage ? cache : 0))
}

/** Where a pull stands: layers done of those announced, bytes downloaded of those announced. */
export interface PullSummary {
  layersDone: number
  layersTotal: number
  /** Bytes downloaded so far. */
  bytes: number
  /** Sum of the layer sizes the engine announced; null while none is known. */
  bytesTotal: number | null
}

const LAYER_DONE = new Set(['Pull complete', 'Already exists'])

/**
 * Sums up a pull's progress reports (Docker's per-layer statuses) into layers done/total and bytes.
 * Reports without a layer, and the `Pulling from <repo>` line (whose id is the tag), are not layers.
 */
export class PullTally {
  readonly #layers = new Map<string, { done: boolean; bytes: number; total: number | null }>()

  push(p: PullProgress): void {
    if (p.layer === undefined || /^Pulling from /.test(p.status)) return
    let l = this.#layers.get(p.layer)
    if (l === undefined) {
      l = { done: false, bytes: 0, total: null }
      this.#layers.set(p.layer, l)
    }
    if (p.status === 'Downloading') {
      if (p.total !== undefined && p.total > 0) l.total = p.total
      if (p.current !== undefined) l.bytes = Math.max(l.bytes, p.current)
    }
    if (p.status === 'Download complete' && l.total !== null) l.bytes = l.total
    if (LAYER_DONE.has(p.status)) l.done = true
  }

  summary(): PullSummary {
    let layersDone = 0, bytes = 0, bytesTotal: number | null = null
    for (const l of this.#layers.values()) {
      if (l.done) layersDone++
      bytes += l.bytes
      if (l.total !== null) bytesTotal = (bytesTotal ?? 0) + l.total
    }
    return { layersDone, layersTotal: this.#layers.size, bytes, bytesTotal }
  }
}
