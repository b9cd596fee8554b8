/**
 * The hosts of the running-flow simulation (running-cluster.ts) and the records its checks read
 * (running-checks.ts): options, a host's volatile process state and durable storage, the actions
 * the agents took, the acknowledged writes. Pure data; running-cluster.ts drives it.
 */
import { emptyAppState, type AppState } from '../consensus/commands.ts'
import { MemoryRaftStorage } from '../consensus/memory-storage.ts'
import type { Raft } from '../consensus/raft.ts'
import type { SlotBook } from '../agent/step.ts'
import type { ObservedTable } from '../agent/observed.ts'
import { randInt, type Rng } from '../core/rng.ts'
import type { MemberState } from '../membership/types.ts'
import type { ServiceSpec } from '../model/index.ts'
import type { ContainerInfo } from '../runtime/types.ts'
import type { Assignment, ObservedReplica } from '../scheduler/types.ts'
import type { Entry as StateEntry } from '../state/types.ts'
import type { NetFaults } from './network.ts'
import type { SimTimer } from './scheduler.ts'

/** Raft tick period (ms), as in the peer. */
export const TICK_MS = 50
/** The cluster id on every container. */
export const CLUSTER_ID = 'sim'

/** Options of a running-flow simulation. */
export interface RunningSimOptions {
  seed: number
  /** Number of hosts (at least 1). */
  hosts: number
  /** How many of them are Raft voters (the rest are learners). Default min(3, hosts). */
  voters?: number
  net?: Partial<NetFaults>
  /** Unreachable this long: suspect (default 500 ms). */
  suspectMs?: number
  /** Unreachable this long: dead (default 1,200 ms, docs/failures.md). */
  deadMs?: number
  /** Agent reconcile period (default 2 s) and observed republish period (default 10 s). */
  agentIntervalMs?: number
  publishIntervalMs?: number
  /** Scheduler debounce (50 ms), round period (1 s) and commit timeout (5 s). */
  debounceMs?: number
  intervalMs?: number
  commitTimeoutMs?: number
  /** How long a graceful stop takes in the engine, [lo, hi) ms (default [50, 1500)). */
  stopMs?: [number, number]
  /** Latency of the other engine calls, [lo, hi) ms (default [5, 80)). */
  opMs?: [number, number]
  /** An over-replicated service or slot must be back to normal within this (default 10 s). */
  overBoundMs?: number
}

/** What a host is running as (its process): a new life after every restart. */
export type MemberView = { lastHeard: number; state: MemberState; since: number }

export interface Session {
  term: number
  readyAt: number
  timer: SimTimer | undefined
  due: number
  inFlight: { term: number; index: number; timeout: SimTimer } | null
  dirty: boolean
}

/** A simulated host: process state (volatile), Raft storage (durable) and its container engine. */
export class SimHost {
  readonly id: string
  readonly name: string
  readonly labels: Record<string, string>
  readonly voter: boolean
  readonly storage = new MemoryRaftStorage()
  /** Process lifetime counter: bumps on every crash. */
  life = 0
  up = false
  raft: Raft | undefined
  app: AppState = emptyAppState()
  flushPending = false
  gateKnown = false
  gateTarget: { term: number; index: number } | undefined
  gateAsking = false
  books = new Map<string, SlotBook>()
  observed: ObservedTable = new Map()
  mine: ObservedReplica[] = []
  version = 0
  agentBusy = false
  agentAgain = false
  session: Session | undefined
  view = new Map<string, MemberView>()
  timers: SimTimer[] = []
  /** The container engine: survives a process crash, not a power loss. */
  readonly containers = new Map<string, ContainerInfo>()
  engineEpoch = 0
  seq = 0
  specCache = new Map<string, { value: Uint8Array; spec: ServiceSpec | null }>()
  /** The highest commit index any host knew when this process started (for the checks). */
  committedAtBoot = 0
  /** The peer's `lastKnownGate` (src/peer/running.ts `useLastKnown`): a new one every life. */
  useLastKnown: () => boolean = () => false
  /**
   * For the checks, kept apart from the gate: since when this process has known no leader (its
   * Raft status, looked at after every tick, message and proposal), null while it knows one.
   */
  noLeaderSince: number | null = null

  constructor(id: string, name: string, labels: Record<string, string>, voter: boolean) {
    this.id = id
    this.name = name
    this.labels = labels
    this.voter = voter
  }
}

/** One agent action, as executed, with what it was decided from. */
export interface ActionRecord {
  t: number
  host: string
  life: number
  kind: 'create' | 'start' | 'stop' | 'remove'
  service: string
  slot: number
  /** The container's generation and revision (create: the assignment's). */
  generation: number
  revision: number
  containerId: string | null
  /** The container ran when the action was issued. */
  wasRunning: boolean
  /** Another container of the slot matched the same assignment (a duplicate copy is stopped). */
  duplicate: boolean
  /** The container was unhealthy (a stop is then the restart policy's, not a removal). */
  unhealthy: boolean
  /** The applied log position the deciding round read: last applied index and its entry's term. */
  applied: { index: number; term: number }
  /** The slot's assignment in that applied table (null: none). */
  assignment: Assignment | null
  /** The highest commit index any host knew when this host's process started. */
  committedAtBoot: number
  /**
   * What the round acted from: `applied` — the committed table behind the applied-state gate;
   * `last-known` — the gate was not open, and the step had this host's last known assignment of the
   * slot (`lastKnown`, then in `assignment`); `none` — the gate was not open and there was none.
   */
  basis: 'applied' | 'last-known' | 'none'
  /** When the round decided (its `now`). */
  decidedAt: number
  /** Since when the host had known no leader at that moment (null: it knew one): the cluster's own record, not the gate's. */
  noLeaderSince: number | null
}

/** An acknowledged desired-state write. */
export interface AckedWrite {
  t: number
  at: string
  entry: StateEntry
}

/** How a host goes down: its process only (containers keep running), or a power loss. */
export type CrashMode = 'process' | 'power-gone' | 'power-exited'


/** A random integer in [lo, hi]. */
export function between(rng: Rng, lo: number, hi: number): number {
  return lo + randInt(rng, hi - lo + 1)
}
