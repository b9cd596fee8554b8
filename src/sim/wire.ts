/**
 * The message layer shared by the simulated clusters: direct messages over the simulated network
 * and broadcasts over the gossip mesh, optionally through the real codec (encode, size-check,
 * decode, schema-check), with traffic accounting and sender checks recorded as violations.
 */
import type { Rng } from '../core/rng.ts'
import { encode, type Decoded, type SenderCheck } from '../transport/codec.ts'
import { GossipMesh, type GossipFrame } from './gossip.ts'
import { Network, type NetFaults, type SendOutcome } from './network.ts'
import type { Scheduler } from './scheduler.ts'

type Payload<M> = M | Uint8Array

/** What travels on the simulated network. */
export type WireFrame<D, B> =
  | { kind: 'direct'; msg: Payload<D>; size: number }
  | { kind: 'gossip'; frame: GossipFrame<Payload<B>> }

/** Traffic counters (messages and bytes; bytes are 0 unless sizes are measured). */
export interface Traffic {
  direct: Record<string, { msgs: number; bytes: number }>
  gossipHops: { msgs: number; bytes: number }
  publishes: number
}

/** The protocol's codec and sender rule, and where decoded messages go. */
export interface WireProtocol<D, B> {
  decodeDirect(data: Uint8Array): Decoded<D>
  decodeBroadcast(data: Uint8Array): Decoded<B>
  /** Whether `from` may send this message; a failure on the sending side is a violation. */
  checkDirect?(from: string, msg: D): SenderCheck
  checkBroadcast(from: string, msg: B): SenderCheck
  /** The name of the broadcast check, for violation messages. */
  checkName: string
  /** A decoded direct message for peer `at`. */
  onDirect(at: string, from: string, msg: D): void
  /** A decoded broadcast for peer `at`; false if it was not taken (the mesh stops forwarding). */
  onBroadcast(at: string, publisher: string, msg: B): boolean
}

export class SimWire<D extends { t: string }, B> {
  readonly net: Network<WireFrame<D, B>>
  readonly mesh: GossipMesh<Payload<B>>
  traffic: Traffic = emptyTraffic()
  readonly #proto: WireProtocol<D, B>
  readonly #violations: string[]
  readonly #wire: boolean
  readonly #sizeOf: ((msg: D | B) => number) | undefined

  constructor(
    opts: { sched: Scheduler; rng: Rng; faults?: Partial<NetFaults>; meshDegree?: number; wire?: boolean; sizeOf?: (msg: D | B) => number; violations: string[] },
    proto: WireProtocol<D, B>,
  ) {
    this.#proto = proto
    this.#violations = opts.violations
    this.#wire = opts.wire === true
    this.#sizeOf = opts.sizeOf
    this.net = new Network<WireFrame<D, B>>(opts.sched, opts.rng, opts.faults)
    this.mesh = new GossipMesh<Payload<B>>({
      send: (from, to, frame) => this.#countHop(frame.size) && this.net.send(from, to, { kind: 'gossip', frame }),
      deliver: (at, publisher, payload) => this.#deliverBroadcast(at, publisher, payload),
      isUp: (id) => this.net.isUp(id),
      now: () => opts.sched.now(),
    }, opts.rng, opts.meshDegree ?? 6)
  }

  /** Attach a (re)started peer to the network. */
  register(id: string): void {
    this.net.register(id, (from, frame) => this.#onFrame(id, from, frame))
  }

  /** Send a direct message, counted by its type. */
  send(from: string, to: string, msg: D): SendOutcome {
    const check = this.#proto.checkDirect?.(from, msg)
    if (check !== undefined && !check.ok) this.#violations.push(`${from} sent a message that fails ${this.#proto.checkName}: ${check.reason}`)
    const bytes = this.#wire ? encode(msg) : undefined
    const size = bytes?.byteLength ?? this.#size(msg)
    const c = (this.traffic.direct[msg.t] ??= { msgs: 0, bytes: 0 })
    c.msgs++
    c.bytes += size
    return this.net.send(from, to, { kind: 'direct', msg: bytes ?? msg, size })
  }

  /** Publish a broadcast on the mesh. */
  publish(from: string, msg: B): void {
    const check = this.#proto.checkBroadcast(from, msg)
    if (!check.ok) this.#violations.push(`${from} published a message that fails ${this.#proto.checkName}: ${check.reason}`)
    this.traffic.publishes++
    if (this.#wire) {
      const bytes = encode(msg)
      this.mesh.publish(from, bytes, bytes.byteLength)
    } else {
      this.mesh.publish(from, msg, this.#size(msg))
    }
  }

  resetTraffic(): void {
    this.traffic = emptyTraffic()
  }

  #size(msg: D | B): number {
    return this.#sizeOf?.(msg) ?? 0
  }

  #countHop(size: number): true {
    this.traffic.gossipHops.msgs++
    this.traffic.gossipHops.bytes += size
    return true
  }

  #onFrame(at: string, from: string, frame: WireFrame<D, B>): void {
    if (frame.kind === 'gossip') {
      this.mesh.onFrame(at, from, frame.frame)
      return
    }
    let msg: D
    if (frame.msg instanceof Uint8Array) {
      const d = this.#proto.decodeDirect(frame.msg)
      if (!d.ok) {
        this.#violations.push(`${at} could not decode a message from ${from}: ${d.reason}`)
        return
      }
      msg = d.value
    } else {
      msg = frame.msg
    }
    this.#proto.onDirect(at, from, msg)
  }

  #deliverBroadcast(at: string, publisher: string, payload: Payload<B>): boolean {
    let msg: B
    if (payload instanceof Uint8Array) {
      const d = this.#proto.decodeBroadcast(payload)
      if (!d.ok) {
        this.#violations.push(`${at} could not decode a broadcast from ${publisher}: ${d.reason}`)
        return false
      }
      msg = d.value
    } else {
      msg = payload
    }
    if (!this.#proto.checkBroadcast(publisher, msg).ok) return false
    return this.#proto.onBroadcast(at, publisher, msg)
  }
}

function emptyTraffic(): Traffic {
  return { direct: {}, gossipHops: { msgs: 0, bytes: 0 }, publishes: 0 }
}
