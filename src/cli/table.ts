/** Tiny formatters for terminal output. Plain text, no colours: the output is also piped. */

/**
 * Columns padded to their widest cell, separated by two spaces, with a header row. The last
 * column is not padded (no trailing spaces). Every line ends with a newline.
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [headers, ...rows]
  const widths = headers.map((_, i) => Math.max(...all.map((r) => [...(r[i] ?? '')].length)))
  const line = (r: readonly string[]): string =>
    headers
      .map((_, i) => {
        const cell = r[i] ?? ''
        return i === headers.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - [...cell].length)
      })
      .join('  ')
      .trimEnd()
  return all.map((r) => `${line(r)}\n`).join('')
}

/** `key  value` lines with the keys aligned. */
export function formatKeyValues(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length))
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join('')
}

/** A short human duration: `45s`, `3m12s`, `5h3m`, `2d4h`. Negative durations count as 0. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ''}`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h${m % 60 ? `${m % 60}m` : ''}`
  const d = Math.floor(h / 24)
  return `${d}d${h % 24 ? `${h % 24}h` : ''}`
}

/** A long id shortened for a table: `12D3KooWAbcd…wxyz`. */
export function shortId(id: string, head = 12, tail = 6): string {
  return id.length <= head + tail + 1 ? id : `${id.slice(0, head)}…${id.slice(-tail)}`
}

/** Labels as `k=v,k2=v2` (sorted by key), or `-` if there are none. */
export function formatLabels(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort()
  return keys.length === 0 ? '-' : keys.map((k) => `${k}=${labels[k]}`).join(',')
}
