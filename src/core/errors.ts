/**
 * An error that a person can act on: `message` says what is wrong, `hint` what to do.
 * The CLI prints it as one line and exits non-zero.
 */
export class SkeinError extends Error {
  readonly code: string
  readonly hint: string | undefined
  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'SkeinError'
    this.code = code
    this.hint = options.hint
  }

  /** One line: the message, then the hint. */
  oneLine(): string {
    return this.hint === undefined ? this.message : `${this.message} (${this.hint})`
  }
}

/** Anything thrown, as a short string for logs. */
export function errorMessage(err: unknown): string {
  if (err instanceof SkeinError) return err.oneLine()
  if (err instanceof Error) return err.message
  return String(err)
}
