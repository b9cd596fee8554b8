import { randomBytes, timingSafeEqual } from 'node:crypto'
import { accessSync, constants, mkdirSync, rmSync, statSync } from 'node:fs'
import { hostname as osHostname } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { SkeinError, errorMessage } from '../core/errors.ts'
import type { Logger } from '../core/logger.ts'
import { openStore, type Store } from '../storage/store.ts'
import { fsError, isExposed, readIfExists, writeAtomic } from './files.ts'
import { defaultNodeName } from './naming.ts'
import { MAX_RESTART_GRACE_MS } from './running-extras.ts'
import { CLUSTER_KEY_BYTES, clusterIdOf, encodeJoinToken, parseJoinToken } from './token.ts'

/**
 * The data dir: everything a peer keeps between runs. See docs/cli.md for the layout.
 *
 *   identity.key  0600  the libp2p private key (bytes from generateIdentity)
 *   cluster.key   0600  the 32-byte cluster key, as 64 hex digits (raw 32 bytes also accepted)
 *   api.token     0600  the HTTP API bearer token (64 hex digits), kept across restarts
 *   api.json      0600  where the running agent's API listens, and its pid (removed on stop)
 *   skein.db      0600  the store: node settings ('node'), incarnation and known peers ('membership'),
 *                       and the Raft tables (src/consensus/storage-sqlite.ts)
 */
export const DEFAULT_PEER_PORT = 7420
export const DEFAULT_API_PORT = 7421
export const DEFAULT_LISTEN = `0.0.0.0:${DEFAULT_PEER_PORT}`
export const DEFAULT_API = `127.0.0.1:${DEFAULT_API_PORT}`

/** File names inside the data dir. */
export const DATA_DIR_FILES = {
  identity: 'identity.key',
  clusterKey: 'cluster.key',
  apiToken: 'api.token',
  apiInfo: 'api.json',
  store: 'skein.db',
} as const

/**
 * The data dir to use: `--data-dir`, else `$SKEIN_DATA_DIR`, else `/var/lib/skein` for root,
 * else `$XDG_DATA_HOME/skein`, else `~/.local/share/skein`. Empty values count as unset.
 */
export function resolveDataDir(opts: { flag?: string; env?: Record<string, string | undefined>; uid?: number; homedir?: string } = {}): string {
  const env = opts.env ?? process.env
  const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s.trim() === '' ? undefined : s)
  const explicit = nonEmpty(opts.flag) ?? nonEmpty(env.SKEIN_DATA_DIR)
  if (explicit !== undefined) return explicit
  const uid = opts.uid ?? process.getuid?.() ?? -1
  if (uid === 0) return '/var/lib/skein'
  const xdg = nonEmpty(env.XDG_DATA_HOME)
  if (xdg !== undefined) return join(xdg, 'skein')
  return join(opts.homedir ?? env.HOME ?? '.', '.local', 'share', 'skein')
}

/** The key functions of the transport, injected so that this file imports no libp2p. */
export interface KeyFunctions {
  generateIdentity(): Promise<Uint8Array>
  peerIdOfIdentity(bytes: Uint8Array): string
  generateClusterKey(): Uint8Array
}

/** Agent flags that the data dir remembers or checks. Undefined means "not given". */
export interface DataDirFlags {
  name?: string
  labels?: Record<string, string>
  listen?: string
  advertise?: string
  api?: string
  join?: string[]
  token?: string
  voters?: number
  raftTiming?: RaftTimingSettings
  restartGraceMs?: number
}

/** Raft timing flags as remembered: a preset and/or individual values (see src/consensus/timing.ts). */
export interface RaftTimingSettings {
  preset?: string | undefined
  tickMs?: number | undefined
  electionTicks?: number | undefined
  heartbeatTicks?: number | undefined
}

/** What the peer says of itself, remembered in the store under 'node'. Addresses are kept only when given as flags. */
export interface NodeSettings {
  name: string
  labels: Record<string, string>
  listen?: string | undefined
  advertise?: string | undefined
  api?: string | undefined
  /** Most voters (`--voters`). */
  voters?: number | undefined
  /** Raft timing flags (`--raft-timing`, `--raft-tick-ms`, ...). */
  raftTiming?: RaftTimingSettings | undefined
  /** `--restart-grace` in ms (0: a graceful stop is not announced). */
  restartGraceMs?: number | undefined
}

/** What membership keeps across restarts, in the store under 'membership'. */
export interface PersistedMembership {
  incarnation: number
  peers: { id: string; address: string }[]
}

const NodeSettingsSchema = z.object({
  name: z.string(),
  labels: z.record(z.string(), z.string()),
  listen: z.string().optional(),
  advertise: z.string().optional(),
  api: z.string().optional(),
  voters: z.number().int().min(1).max(99).optional(),
  raftTiming: z
    .object({ preset: z.string().optional(), tickMs: z.number().optional(), electionTicks: z.number().optional(), heartbeatTicks: z.number().optional() })
    .optional(),
  restartGraceMs: z.number().int().min(0).max(MAX_RESTART_GRACE_MS).optional(),
})

const MembershipSchema = z.object({
  incarnation: z.number().int().nonnegative(),
  peers: z.array(z.object({ id: z.string(), address: z.string() })),
})

/** Everything the agent needs from its data dir. The caller owns `store` and closes it. */
export interface LoadedDataDir {
  dir: string
  /** True if this run created a new cluster (fresh cluster key). */
  createdCluster: boolean
  /** True if this run created the peer identity. */
  createdIdentity: boolean
  identity: Uint8Array
  peerId: string
  clusterKey: Uint8Array
  /** Short public id of the cluster (see clusterIdOf). */
  clusterId: string
  /** The join token for this cluster. */
  joinToken: string
  /** The HTTP API bearer token. */
  apiToken: string
  settings: NodeSettings
  /** The incarnation to start with: one above the last one used, already persisted. */
  incarnation: number
  /** Peers known from earlier runs, to rejoin through. */
  peers: { id: string; address: string }[]
  store: Store
}

/**
 * Create the data dir on first use, or load it. Checks come before any write: joining with an
 * empty data dir needs a token ('token-required'), and a token of another cluster is refused
 * ('token-mismatch'). An unreadable dir gives 'data-dir-unreadable'.
 */
export async function initOrLoad(dir: string, flags: DataDirFlags, deps: { keys: KeyFunctions; logger: Logger; hostname?: string }): Promise<LoadedDataDir> {
  const log = deps.logger
  ensureDataDir(dir)
  const existingKey = readClusterKey(dir)
  const tokenKey = flags.token === undefined ? undefined : parseJoinToken(flags.token)
  if (existingKey !== undefined && tokenKey !== undefined && !sameBytes(existingKey, tokenKey)) {
    throw new SkeinError('token-mismatch', `the join token is for cluster ${clusterIdOf(tokenKey)}, but data dir ${dir} belongs to cluster ${clusterIdOf(existingKey)}`, {
      hint: 'drop --token to stay in this cluster, or pass a fresh --data-dir to join the other one',
    })
  }
  if (existingKey === undefined && tokenKey === undefined && (flags.join?.length ?? 0) > 0) {
    throw new SkeinError('token-required', 'joining a cluster needs its join token: pass --token', { hint: 'run `skein token` on a member to print it' })
  }

  const idPath = join(dir, DATA_DIR_FILES.identity)
  let identity: Uint8Array | undefined = readIfExists(dir, idPath)
  const createdIdentity = identity === undefined
  if (identity === undefined) {
    if (existingKey !== undefined) log.warn({ path: idPath }, 'identity.key is missing: this peer gets a new identity and joins as a new member')
    identity = await deps.keys.generateIdentity()
    writeAtomic(dir, idPath, identity, 0o600)
  }
  let peerId: string
  try {
    peerId = deps.keys.peerIdOfIdentity(new Uint8Array(identity))
  } catch (err) {
    throw new SkeinError('identity-invalid', `${idPath} does not hold a valid peer identity (${errorMessage(err)})`, {
      hint: 'restore it from a backup; removing it makes this host join as a new peer',
      cause: err,
    })
  }

  const clusterKey = existingKey ?? tokenKey ?? deps.keys.generateClusterKey()
  if (existingKey === undefined) writeAtomic(dir, join(dir, DATA_DIR_FILES.clusterKey), `${Buffer.from(clusterKey).toString('hex')}\n`, 0o600)
  const apiToken = loadOrCreateApiToken(dir)
  for (const f of [DATA_DIR_FILES.identity, DATA_DIR_FILES.clusterKey, DATA_DIR_FILES.apiToken]) {
    if (isExposed(join(dir, f))) log.warn({ file: join(dir, f) }, `${f} is readable by other users: run chmod 600 on it`)
  }

  const store = openStore(join(dir, DATA_DIR_FILES.store), { logger: log })
  try {
    const persisted = store.get('node', NodeSettingsSchema)
    const settings: NodeSettings = {
      name: flags.name ?? persisted?.name ?? defaultNodeName(deps.hostname ?? osHostname()),
      labels: flags.labels ?? persisted?.labels ?? {},
      listen: flags.listen ?? persisted?.listen,
      advertise: flags.advertise ?? persisted?.advertise,
      api: flags.api ?? persisted?.api,
      voters: flags.voters ?? persisted?.voters,
      raftTiming: flags.raftTiming ?? persisted?.raftTiming,
      restartGraceMs: flags.restartGraceMs ?? persisted?.restartGraceMs,
    }
    const membership = store.get('membership', MembershipSchema)
    const incarnation = membership === undefined ? 0 : membership.incarnation + 1
    const peers = membership?.peers ?? []
    store.transaction(() => {
      store.put('node', dropUndefined(settings))
      store.put('membership', { incarnation, peers })
    })
    return {
      dir,
      createdCluster: existingKey === undefined && tokenKey === undefined,
      createdIdentity,
      identity: new Uint8Array(identity),
      peerId,
      clusterKey,
      clusterId: clusterIdOf(clusterKey),
      joinToken: encodeJoinToken(clusterKey),
      apiToken,
      settings,
      incarnation,
      peers,
      store,
    }
  } catch (err) {
    store.close()
    throw err
  }
}

/** Remember membership's incarnation and known peers (called by the membership service). */
export function saveMembership(store: Store, state: PersistedMembership): void {
  store.put('membership', { incarnation: state.incarnation, peers: state.peers.map((p) => ({ id: p.id, address: p.address })) })
}

/** Create the data dir (mode 0700) if needed and check that this user may use it. */
export function ensureDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw fsError(dir, dir, err, 'create the data dir')
  }
  try {
    if (!statSync(dir).isDirectory()) throw new SkeinError('data-dir-invalid', `${dir} is not a directory`, { hint: 'pass --data-dir with a directory path' })
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK)
  } catch (err) {
    if (err instanceof SkeinError) throw err
    throw fsError(dir, dir, err, 'use the data dir')
  }
}

/** The cluster key kept in the data dir, or undefined if there is none yet. */
export function readClusterKey(dir: string): Uint8Array | undefined {
  const path = join(dir, DATA_DIR_FILES.clusterKey)
  const raw = readIfExists(dir, path)
  if (raw === undefined) return undefined
  if (raw.length === CLUSTER_KEY_BYTES) return new Uint8Array(raw)
  const text = raw.toString('utf8').trim()
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new Uint8Array(Buffer.from(text, 'hex'))
  throw new SkeinError('cluster-key-invalid', `${path} does not hold a cluster key (expected 64 hex digits)`, { hint: 'restore it from a backup or from another member’s data dir' })
}

/** The API bearer token kept in the data dir, or undefined. */
export function readApiToken(dir: string): string | undefined {
  const raw = readIfExists(dir, join(dir, DATA_DIR_FILES.apiToken))
  const text = raw?.toString('utf8').trim()
  return text === undefined || text === '' ? undefined : text
}

function loadOrCreateApiToken(dir: string): string {
  const existing = readApiToken(dir)
  if (existing !== undefined) {
    if (existing.length < 16 || /\s/.test(existing)) {
      throw new SkeinError('api-token-invalid', `${join(dir, DATA_DIR_FILES.apiToken)} holds no usable API token (at least 16 characters, no spaces)`, {
        hint: 'delete the file to have a new token made',
      })
    }
    return existing
  }
  const token = randomBytes(32).toString('hex')
  writeAtomic(dir, join(dir, DATA_DIR_FILES.apiToken), `${token}\n`, 0o600)
  return token
}

/** Where a running agent's API listens (api.json). */
export interface ApiInfo {
  /** `host:port` of the HTTP API. */
  address: string
  pid: number
  /** ISO time the agent started. */
  startedAt: string
  version: string
}

const ApiInfoSchema = z.object({ address: z.string(), pid: z.number().int(), startedAt: z.string(), version: z.string() })

/** Record the running agent's API address. */
export function writeApiInfo(dir: string, info: ApiInfo): void {
  writeAtomic(dir, join(dir, DATA_DIR_FILES.apiInfo), `${JSON.stringify(info, null, 2)}\n`, 0o600)
}

/** The API address recorded by an agent (possibly one that has since died), or undefined. */
export function readApiInfo(dir: string): ApiInfo | undefined {
  const path = join(dir, DATA_DIR_FILES.apiInfo)
  const raw = readIfExists(dir, path)
  if (raw === undefined || raw.toString('utf8').trim() === '') return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(raw.toString('utf8'))
  } catch {
    parsed = undefined
  }
  const res = ApiInfoSchema.safeParse(parsed)
  if (!res.success) throw new SkeinError('data-dir-invalid', `${path} is not a valid api.json`, { hint: 'remove it; the agent writes it again when it starts' })
  return res.data
}

/** Remove api.json if it still names `pid` (a newer agent may have replaced it). */
export function removeApiInfo(dir: string, pid: number): void {
  try {
    if (readApiInfo(dir)?.pid === pid) rmSync(join(dir, DATA_DIR_FILES.apiInfo), { force: true })
  } catch {
    return
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

function dropUndefined(s: NodeSettings): Record<string, unknown> {
  const out: Record<string, unknown> = Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined))
  if (s.raftTiming !== undefined) {
    const t = Object.fromEntries(Object.entries(s.raftTiming).filter(([, v]) => v !== undefined))
    if (Object.keys(t).length > 0) out.raftTiming = t
    else delete out.raftTiming
  }
  return out
}
