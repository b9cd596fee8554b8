/**
 * A stand-in for gossipsub in simulations: every node keeps a random mesh of about D neighbours;
 * a published message floods over the mesh hop by hop (each hop a network message, so it sees
 * the network's delay, loss and partitions), each node validating it, delivering it once and
 * forwarding it to its other neighbours. Like gossipsub, a publisher does not get its own message.
 */
import { sample, type Rng } from '../core/rng.ts'

/** One hop of a gossip message. */
export interface GossipFrame<P> {
  msgId: string
  publisher: string
  payload: P
  /** Encoded size in bytes, for accounting (0 if not measured). */
  size: number
}

/** What the mesh needs from its host. */
export interface GossipHost<P> {
  /** Send one hop over the network. */
  send(from: string, to: string, frame: GossipFrame<P>): void
  /** Validate and deliver at node `at`; false = reject (not delivered, not forwarded). */
  deliver(at: string, publisher: string, payload: P): boolean
  /** Is the node running? (down nodes are skipped as neighbours) */
  isUp(id: string): boolean
  /** Virtual time, for the seen-cache expiry. */
  now(): number
}

/** How long a node remembers a message id (gossipsub's seen TTL is about 2 minutes). */
const SEEN_TTL_MS = 120_000

/** A flooding mesh over a fixed set of nodes. */
export class GossipMesh<P> {
  readonly degree: number
  readonly #host: GossipHost<P>
  readonly #rng: Rng
  readonly #adj = new Map<string, Set<string>>()
  readonly #seen = new Map<string, Map<string, number>>()
  #counter = 0

  constructor(host: GossipHost<P>, rng: Rng, degree = 6) {
    this.#host = host
    this.#rng = rng
    this.degree = degree
  }

  /** Add a node and link it to about degree/2 random existing nodes (average degree ≈ D). */
  addNode(id: string): void {
    if (this.#adj.has(id)) return
    const others = [...this.#adj.keys()]
    this.#adj.set(id, new Set())
    for (const o of sample(this.#rng, others, Math.ceil(this.degree / 2))) this.#link(id, o)
  }

  /** The mesh neighbours of a node. */
  neighbours(id: string): string[] {
    return [...(this.#adj.get(id) ?? [])]
  }

  /** Forget what a node has seen (it restarted). */
  reset(id: string): void {
    this.#seen.delete(id)
  }

  /** Publish from `from`; returns the message id. */
  publish(from: string, payload: P, size = 0): string {
    const frame: GossipFrame<P> = { msgId: `${from}#${++this.#counter}`, publisher: from, payload, size }
    this.#markSeen(from, frame.msgId)
    this.#forward(from, frame, undefined)
    return frame.msgId
  }

  /** A frame arrived at `at` from neighbour `via`. */
  onFrame(at: string, via: string, frame: GossipFrame<P>): void {
    if (!this.#markSeen(at, frame.msgId)) return
    if (!this.#host.deliver(at, frame.publisher, frame.payload)) return
    this.#forward(at, frame, via)
  }

  #link(a: string, b: string): void {
    this.#adj.get(a)?.add(b)
    this.#adj.get(b)?.add(a)
  }

  #forward(at: string, frame: GossipFrame<P>, except: string | undefined): void {
    for (const n of this.#adj.get(at) ?? []) {
      if (n !== except && n !== frame.publisher && this.#host.isUp(n)) this.#host.send(at, n, frame)
    }
  }

  /** True if the id is new at this node. */
  #markSeen(at: string, msgId: string): boolean {
    let seen = this.#seen.get(at)
    if (seen === undefined) {
      seen = new Map()
      this.#seen.set(at, seen)
    }
    if (seen.has(msgId)) return false
    const now = this.#host.now()
    seen.set(msgId, now)
    if (seen.size % 1024 === 0) {
      for (const [id, t] of seen) if (now - t > SEEN_TTL_MS) seen.delete(id)
    }
    return true
  }
}
