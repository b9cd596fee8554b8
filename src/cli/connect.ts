import type { Command } from 'commander'
import { createApiClient, type ApiClient } from '../api/client.ts'
import { formatHostPort, parseHostPort } from '../core/hostport.ts'
import { DEFAULT_API, readApiInfo, readApiToken, resolveDataDir } from '../peer/datadir.ts'

/** Flags every client command takes to find its agent. */
export interface ConnectFlags {
  dataDir?: string
  api?: string
}

/**
 * A client for the local agent.
 *
 * - Address: `--api`, else the `api.json` the agent wrote in the data dir, else 127.0.0.1:7421.
 * - Token: `$SKEIN_TOKEN`, else the data dir's `api.token`.
 *
 * With `--api` and no explicit data dir, an unreadable default data dir is ignored (the token
 * may come from `$SKEIN_TOKEN`); otherwise it is an error.
 */
export function connect(flags: ConnectFlags, env: Record<string, string | undefined>, opts: { timeoutMs?: number } = {}): ApiClient {
  const explicitDir = flags.dataDir !== undefined || (env.SKEIN_DATA_DIR ?? '').trim() !== ''
  const dir = resolveDataDir({ flag: flags.dataDir, env })
  const lenient = flags.api !== undefined && !explicitDir
  const tryRead = <T>(fn: () => T): T | undefined => {
    try {
      return fn()
    } catch (err) {
      if (lenient) return undefined
      throw err
    }
  }
  const info = flags.api !== undefined ? undefined : tryRead(() => readApiInfo(dir))
  const address = flags.api !== undefined ? formatHostPort(parseHostPort(flags.api, { what: '--api' })) : (info?.address ?? DEFAULT_API)
  // Without api.json the address is only a guess: another agent may answer there.
  const origin = flags.api === undefined && info === undefined ? `${dir} has no api.json (is its agent running?), so the default ${DEFAULT_API} was tried` : undefined
  const envToken = (env.SKEIN_TOKEN ?? '').trim()
  const token = envToken !== '' ? envToken : tryRead(() => readApiToken(dir))
  return createApiClient({ address, token, ...(origin === undefined ? {} : { origin }), ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }) })
}

/** Add the flags that find the local agent (`--data-dir`, `--api`) to a client command. */
export function withConnectFlags(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'the local agent’s data dir (finds its API address and token)')
    .option('--api <host:port>', 'the agent’s API address (token from $SKEIN_TOKEN or the data dir)')
}

/** A value as the indented JSON that `--json` prints, with a final newline. */
export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`
}
