// Units people write in spec files, and the integers the canonical form stores:
// durations → milliseconds, memory → bytes, CPU → thousandths of a core.

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000,
}

/** The largest duration accepted: 30 days. */
export const MAX_DURATION_MS = 30 * 86_400_000

/**
 * Parses a duration in Go notation (`10s`, `1m30s`, `1.5h`, `250ms`) into whole milliseconds.
 * Also accepts `d` for days. Returns undefined if the text is not a duration, is negative, is finer
 * than a millisecond or longer than {@link MAX_DURATION_MS}.
 */
export function parseDuration(text: string): number | undefined {
  const s = text.trim()
  if (s === '0') return 0
  const re = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)/gy
  let total = 0
  let end = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? NaN)
    end = re.lastIndex
  }
  if (end === 0 || end !== s.length || !Number.isFinite(total)) return undefined
  const ms = Math.round(total)
  if (Math.abs(total - ms) > 1e-6 || ms > MAX_DURATION_MS) return undefined
  return ms
}

/** Formats milliseconds the way people write them: `1m30s`, `250ms`, `0s`. Round-trips through {@link parseDuration}. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s'
  const parts: string[] = []
  let rest = ms
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(rest / size)
    if (n > 0) parts.push(`${n}${unit}`)
    rest -= n * size
  }
  return parts.join('')
}

const MEMORY_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/**
 * Parses a memory size into bytes. Units are binary as in Docker: `k`, `m`, `g`, `t`, with an
 * optional `b` or `i`/`ib` (`256M`, `256mb`, `256Mi`, `1.5G`, `1024`). A number is bytes.
 * Returns undefined for anything else, or for sizes that are not positive whole bytes.
 */
export function parseMemory(input: unknown): number | undefined {
  if (typeof input === 'number') return Number.isSafeInteger(input) && input > 0 ? input : undefined
  if (typeof input !== 'string') return undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:ib|i|b)?\s*$/i.exec(input)
  if (m === null) return undefined
  const bytes = Math.round(Number(m[1]) * (MEMORY_UNITS[(m[2] ?? '').toLowerCase()] ?? NaN))
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined
}

/** Formats bytes with the largest binary unit that divides them: `256M`, `1536M`, `1G`, `100B`. */
export function formatMemory(bytes: number): string {
  for (const [unit, size] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`
  }
  return `${bytes}B`
}

/**
 * Parses a CPU amount in cores (`0.5`, `"1.25"`, `2`) or millicores (`"500m"`) into
 * thousandths of a core. Returns undefined unless it is positive and a whole number of millicores.
 */
export function parseCpu(input: unknown): number | undefined {
  let milli: number
  if (typeof input === 'number') milli = input * 1000
  else if (typeof input === 'string') {
    const s = input.trim()
    const m = /^(\d+)m$/.exec(s)
    if (m !== null) milli = Number(m[1])
    else if (/^(\d+(\.\d*)?|\.\d+)$/.test(s)) milli = Number(s) * 1000
    else return undefined
  } else return undefined
  const whole = Math.round(milli)
  if (!Number.isFinite(milli) || Math.abs(milli - whole) > 1e-6 || whole <= 0 || whole > 1_000_000) return undefined
  return whole
}

/** Formats thousandths of a core as cores: `0.5`, `2`. */
export function formatCpu(milli: number): string {
  return String(milli / 1000)
}

/** Parses a file mode: a number as written, or octal text (`"0440"`, `"440"`, `"0o440"`). */
export function parseFileMode(input: unknown): number | undefined {
  let mode: number
  if (typeof input === 'number') mode = input
  else if (typeof input === 'string' && /^(0o?)?[0-7]{1,4}$/i.test(input.trim())) mode = parseInt(input.trim().replace(/^0o/i, ''), 8)
  else return undefined
  return Number.isInteger(mode) && mode >= 0 && mode <= 0o7777 ? mode : undefined
}
