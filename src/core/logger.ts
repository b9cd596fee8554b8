import { pino, type Logger, type LevelWithSilent } from 'pino'
import pretty from 'pino-pretty'

export type { Logger }

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/**
 * The logger factory. JSON lines by default; human-readable when stderr is a terminal
 * (or `pretty` is set). Logs go to stderr so that stdout stays for command output.
 */
export function createLogger(opts: { level?: LevelWithSilent; pretty?: boolean; name?: string } = {}): Logger {
  const level = opts.level ?? 'info'
  const wantPretty = opts.pretty ?? process.stderr.isTTY === true
  const base = { name: opts.name ?? 'skein' }
  if (wantPretty) {
    // A synchronous stream, not a worker-thread transport: it works inside the single binary.
    const stream = pretty({ destination: 2, colorize: process.stderr.isTTY === true, ignore: 'pid,hostname,name', translateTime: 'HH:MM:ss.l' })
    return pino({ level, base }, stream)
  }
  return pino({ level, base }, pino.destination({ dest: 2, sync: false }))
}

/** A logger that drops everything: for tests and the simulation. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
