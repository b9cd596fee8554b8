import type { PeerId } from '../transport/types.ts'

/**
 * Membership data types, shared by the pure core (table.ts), its shell (service.ts), the wire
 * schemas (messages.ts) and the API.
 */
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left'

export const MEMBER_STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left']

/** What a peer says of itself; it changes only with a higher incarnation. */
export interface MemberInfo {
  id: PeerId
  name: string
  /** Where others dial it: `host:port` (the advertised address). */
  address: string
  labels: Record<string, string>
}

/** A row of the membership table as this peer sees it. */
export interface Member extends MemberInfo {
  state: MemberState
  incarnation: number
  /** Local clock time (ms) of the last state change, for `nodes` ("last change") and reaping. */
  since: number
}

/** A claim about one member, as spread by gossip and push-pull. */
export type Update =
  | { kind: 'alive'; id: PeerId; inc: number; name: string; address: string; labels: Record<string, string> }
  | { kind: 'suspect'; id: PeerId; inc: number; from: PeerId }
  | { kind: 'dead'; id: PeerId; inc: number; from: PeerId }
  | { kind: 'left'; id: PeerId; inc: number }

/** Direct messages, on the protocol MEMBERSHIP_PROTOCOL. `from` must equal the authenticated sender. */
export type DirectMessage =
  | { t: 'ping'; seq: number; from: PeerId }
  | { t: 'ack'; seq: number; from: PeerId }
  | { t: 'ping-req'; seq: number; from: PeerId; target: PeerId; address: string }
  | { t: 'nack'; seq: number; from: PeerId }
  | { t: 'push-pull'; from: PeerId; reply: boolean; members: MemberRecord[] }

/** A full-state row in push-pull. */
export interface MemberRecord extends MemberInfo {
  state: MemberState
  incarnation: number
}

/** Gossip messages, on the topic MEMBERSHIP_TOPIC. `from` must equal the signed publisher. */
export interface BroadcastMessage {
  t: 'updates'
  from: PeerId
  updates: Update[]
}

export const MEMBERSHIP_PROTOCOL = '/skein/membership/1.0.0'
export const MEMBERSHIP_TOPIC = 'skein/membership/1'

/** Timing and sizing parameters. Defaults suit a LAN; docs/membership.md explains each. */
export interface MembershipConfig {
  /** How often this peer probes one other member. */
  probeIntervalMs: number
  /** How long to wait for a direct ack before asking others to probe indirectly. */
  probeTimeoutMs: number
  /** How many peers are asked to probe indirectly (SWIM's k). */
  indirectChecks: number
  /** Suspicion timeout = suspicionMult × max(1, log10(N)) × probeInterval, at the least. */
  suspicionMult: number
  /** The longest suspicion timeout, as a multiple of the shortest (Lifeguard). */
  suspicionMaxMult: number
  /** Lifeguard local health: the awareness score runs from 0 to this − 1; probe timing scales by score + 1. */
  awarenessMax: number
  /** How often this peer exchanges full state with one random peer. */
  pushPullIntervalMs: number
  /** How long dead and left members stay listed before they are forgotten. */
  reapAfterMs: number
}

export const DEFAULT_MEMBERSHIP_CONFIG: MembershipConfig = {
  probeIntervalMs: 200,
  probeTimeoutMs: 100,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxMult: 6,
  awarenessMax: 8,
  pushPullIntervalMs: 5_000,
  reapAfterMs: 24 * 60 * 60 * 1000,
}

/** What the pure core asks its shell to do. */
export type Effect =
  | { type: 'send'; to: PeerId; address: string; msg: DirectMessage }
  | { type: 'broadcast'; msg: BroadcastMessage }
  | { type: 'changed'; member: Member; previous: MemberState | undefined }
