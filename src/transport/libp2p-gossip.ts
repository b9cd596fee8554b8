/**
 * Gossipsub construction and peer scoring, in one place: switching between `@libp2p/gossipsub`
 * and `@chainsafe/libp2p-gossipsub` means changing the import below and nothing else.
 *
 * Scoring (gossipsub's topic params default to `{}`, which scores nothing):
 * - P4 (invalid messages) is the point: -12 × count² per topic. The positive part is capped at
 *   +10 (topicScoreCap), so a peer whose messages our validators reject on a topic drops below
 *   the gossip threshold (-10) after 2 rejections and below the graylist threshold (-80: all its
 *   RPCs ignored) after 3. The count decays 1 %/s: a graylisted peer is heard again after ~10 s
 *   without further offences.
 * - P3/P3b (mesh delivery rate) are OFF: Skein's topics are quiet (membership changes, spec
 *   writes), so any delivery-rate threshold would punish every honest peer in an idle cluster
 *   (with the library defaults, threshold 20 per window, they would all be graylisted).
 * - P1/P2 give a small positive score for time in mesh and first deliveries, capped.
 * - P6 (IP colocation, -5 × surplus² past 10 peers on one IP) can whitelist loopback.
 *
 * Validators should say 'reject' only for messages no honest peer could send (bad schema,
 * bad signature), and 'ignore' for stale, duplicate or unknown-version ones: a rolling
 * upgrade must not graylist the upgraded peers.
 */
import { gossipsub, StrictSign, TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub, GossipsubOpts } from '@libp2p/gossipsub'
import type { PeerScoreParams, TopicScoreParams } from '@libp2p/gossipsub/score'
import type { Verdict } from './types.ts'

export { TopicValidatorResult }
export type { GossipSub }

/** Gossipsub's heartbeat: 700 ms (as Ethereum's consensus layer) so meshes form and repair fast. */
export const GOSSIP_HEARTBEAT_MS = 700

/** Score parameters for every topic this peer subscribes to. */
export const TOPIC_SCORE_PARAMS: TopicScoreParams = {
  topicWeight: 1,
  // P1: up to +1 after 100 s in the mesh.
  timeInMeshWeight: 0.01,
  timeInMeshQuantum: 1_000,
  timeInMeshCap: 100,
  // P2: first deliveries, up to +5, halving every ~7 s.
  firstMessageDeliveriesWeight: 0.5,
  firstMessageDeliveriesDecay: 0.9,
  firstMessageDeliveriesCap: 10,
  // P3 and P3b: off (quiet topics); the decay/cap/threshold values only satisfy the validator.
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesCap: 1,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 5_000,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.5,
  // P4: -12 * count^2: 1 reject → -12, 2 → -48, 3 → -108 (graylisted even with the +10 cap).
  // The count decays by 1% a second (half-life ~70 s).
  invalidMessageDeliveriesWeight: -12,
  invalidMessageDeliveriesDecay: 0.99,
}

/** Options for the gossip service. */
export interface GossipInit {
  /** Largest accepted message payload in bytes. */
  maxMessageBytes: number
  /** Exempt loopback addresses from the IP-colocation penalty (many peers on one host, in tests). */
  loopbackColocation: boolean
}

/** Loopback addresses as gossipsub prints them (see its multiaddrToIPStr). */
const LOOPBACK_IPS = ['127.0.0.1', '::1']

/** Peer-wide score parameters. Topics are added as they are subscribed (addTopicScoring). */
export function peerScoreParams(init: Pick<GossipInit, 'loopbackColocation'>): Partial<PeerScoreParams> {
  return {
    topics: {},
    topicScoreCap: 10,
    appSpecificScore: () => 0,
    appSpecificWeight: 1,
    IPColocationFactorWeight: -5,
    IPColocationFactorThreshold: 10,
    IPColocationFactorWhitelist: new Set(init.loopbackColocation ? LOOPBACK_IPS : []),
    behaviourPenaltyWeight: -10,
    behaviourPenaltyThreshold: 0,
    behaviourPenaltyDecay: 0.9,
    decayInterval: 1_000,
    decayToZero: 0.01,
    retainScore: 10 * 60_000,
  }
}

/** The libp2p service factory for gossipsub. The ONLY place that constructs it. */
export function createGossip(init: GossipInit): ReturnType<typeof gossipsub> {
  const opts: Partial<GossipsubOpts> = {
    globalSignaturePolicy: StrictSign,
    emitSelf: false,
    // Skein peers all speak gossipsub; no floodsub fallback to attack.
    fallbackToFloodsub: false,
    // Our own messages go to every subscribed peer, not only the mesh: fastest first delivery in
    // small clusters, and no wait for the mesh after a connect.
    floodPublish: true,
    allowPublishToZeroTopicPeers: true,
    ignoreDuplicatePublishError: true,
    heartbeatInterval: GOSSIP_HEARTBEAT_MS,
    doPX: false,
    // One RPC carries a message plus piggybacked control (IHAVE lists can be long).
    maxInboundDataLength: init.maxMessageBytes + 256 * 1024,
    scoreParams: peerScoreParams(init),
    scoreThresholds: { gossipThreshold: -10, publishThreshold: -50, graylistThreshold: -80, acceptPXThreshold: 100, opportunisticGraftThreshold: 5 },
  }
  return gossipsub(opts)
}

/** What this module needs from the running service beyond the public GossipSub interface. */
interface ScoredGossip {
  score: { params: { topics: Record<string, TopicScoreParams> } }
  getScore(peer: string): number
}

function isScoredGossip(x: unknown): x is ScoredGossip {
  if (typeof x !== 'object' || x === null) return false
  const score: unknown = (x as { score?: unknown }).score
  if (typeof score !== 'object' || score === null) return false
  const params: unknown = (score as { params?: unknown }).params
  if (typeof params !== 'object' || params === null) return false
  return typeof (params as { topics?: unknown }).topics === 'object' && typeof (x as { getScore?: unknown }).getScore === 'function'
}

/**
 * Turn scoring on for a topic. The service reads its params object live, so a topic added
 * after start counts from then on. Returns false if the service does not expose its params
 * (another gossipsub build): the caller logs it, since rejections then cost the sender nothing.
 */
export function addTopicScoring(service: GossipSub, topic: string): boolean {
  if (!isScoredGossip(service)) return false
  service.score.params.topics[topic] = { ...TOPIC_SCORE_PARAMS }
  return true
}

/** A peer's gossip score (0 for unknown peers; NaN if the service does not expose scores). */
export function gossipScore(service: GossipSub, peer: string): number {
  return isScoredGossip(service) ? service.getScore(peer) : Number.NaN
}

/** Our verdict as gossipsub's. */
export function toValidatorResult(v: Verdict): TopicValidatorResult {
  switch (v) {
    case 'accept':
      return TopicValidatorResult.Accept
    case 'reject':
      return TopicValidatorResult.Reject
    default:
      return TopicValidatorResult.Ignore
  }
}
