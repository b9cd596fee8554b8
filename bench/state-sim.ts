/**
 * Desired state at simulated scale: 1,000 peers (by default) on the deterministic simulation,
 * 5–20 ms per network hop, a gossipsub-like mesh of degree 6, default timing (anti-entropy every
 * 2 s). Every peer starts from the same converged store of 500 services (about 600 bytes each).
 *
 * Measures, in simulated time: anti-entropy bytes per peer per second when nothing changes
 * (msgpack-encoded size of every direct message, both directions, divided by peers and seconds);
 * how long until 99 % / 100 % of peers hold a change spread by gossip; the same when the gossip
 * is lost and anti-entropy alone spreads it; and how long a peer that was down during 50 changes
 * takes to catch up after its restart.
 *
 * `node bench/state-sim.ts [peers] [seed]`, or runStateSimBench() from another script.
 */
import { pathToFileURL } from 'node:url'
import { StateSim } from '../src/sim/state-cluster.ts'
import type { Entry, ReplicaMeta } from '../src/state/types.ts'
import { encode } from '../src/transport/codec.ts'
import { fmtMs, printTable } from './stats.ts'

const HOP_DELAY: [number, number] = [5, 20]
const WARMUP_MS = 5_000
const STEADY_MS = 30_000

/** Options of the benchmark. */
export interface StateSimBenchOptions {
  peers?: number
  services?: number
  seed?: number
}

/** Time until `frac` of `n` peers held it, from the sorted times at which each one did. */
function until(times: number[], n: number, frac: number): number {
  const need = Math.ceil(n * frac)
  return times.length >= need ? (times[need - 1] as number) : Number.NaN
}

/** Run the simulated-scale benchmark; prints a table and returns the figures. */
export async function runStateSimBench(opts: StateSimBenchOptions = {}): Promise<Record<string, number>> {
  const peers = opts.peers ?? 1000
  const services = opts.services ?? 500
  const seed = opts.seed ?? 1
  const wall0 = performance.now()
  const sim = new StateSim({ seed, faults: { delay: HOP_DELAY, loss: 0, dup: 0 }, skewMs: 50, sizeOf: (m) => encode(m).byteLength })
  const ids = sim.add(peers)
  const t = sim.epoch - 60_000
  const preload: Entry[] = Array.from({ length: services }, (_, i) => ({
    key: `stack-${i % 25}_service-${i}`,
    hlc: { wall: t + i, logical: 0, node: ids[i % peers] as string },
    value: new TextEncoder().encode(JSON.stringify({ image: `registry.example/app-${i}:1.${i % 10}`, replicas: 1 + (i % 5) }).padEnd(600, ' ')),
    revision: 1,
  }))
  const meta: ReplicaMeta = { status: 'current', aliveAt: sim.epoch, joiningSince: undefined, clock: { wall: t + services, logical: 0 } }
  for (const id of ids) sim.start(id, { preload, meta })

  // Steady state: nothing changes.
  sim.runFor(WARMUP_MS)
  const converged0 = sim.convergence() === undefined
  sim.resetTraffic()
  sim.runFor(STEADY_MS)
  const secs = STEADY_MS / 1000
  let aeBytes = 0
  let aeMsgs = 0
  for (const c of Object.values(sim.traffic.direct)) {
    aeBytes += c.bytes
    aeMsgs += c.msgs
  }
  const rootMsg = sim.traffic.direct.root ?? { msgs: 0, bytes: 0 }

  // A change spread by gossip (plus anti-entropy).
  const spread = (writer: string, key: string, gossip: boolean): number[] => {
    const seen = new Map<string, number>()
    const t0 = sim.sched.now()
    const core = sim.core(writer)
    if (core === undefined) throw new Error(writer)
    const value = new TextEncoder().encode(`scaled ${key} at ${t0}`)
    let stamp: Entry | undefined
    sim.onEffect((peer, eff, at) => {
      if (eff.type === 'changed' && eff.key === key && stamp !== undefined && eff.entry.hlc.wall === stamp.hlc.wall && eff.entry.hlc.node === stamp.hlc.node && !seen.has(peer)) seen.set(peer, at - t0)
    })
    if (gossip) {
      stamp = sim.apply(writer, [{ key, value }])[0]?.entry
    } else {
      // Write at the core directly and drop its broadcast: only anti-entropy can spread it.
      stamp = core.put(key, value, sim.physical(writer)).result.entry
    }
    seen.set(writer, 0)
    sim.runUntil(() => seen.size >= peers, 120_000, 5)
    return [...seen.values()].sort((a, b) => a - b)
  }
  const gossipTimes = spread(ids[7 % peers] as string, preload[42 % services]?.key ?? 'x', true)
  sim.runFor(5_000)
  const aeTimes = spread(ids[11 % peers] as string, preload[43 % services]?.key ?? 'y', false)
  sim.runFor(5_000)

  // A peer down during 50 changes catches up after restart.
  const down = ids[13 % peers] as string
  sim.crash(down)
  for (let i = 0; i < 50; i++) {
    sim.apply(ids[(17 + i) % peers] as string, [{ key: preload[(100 + i) % services]?.key ?? `k${i}`, value: new TextEncoder().encode(`change ${i}`) }])
    sim.runFor(100)
  }
  sim.runFor(3_000)
  const reference = sim.core(ids[0] as string)
  sim.start(down)
  const catchUp = sim.runUntil(() => {
    const a = sim.core(down)?.root()
    const b = reference?.root()
    return a !== undefined && b !== undefined && Buffer.compare(a, b) === 0
  }, 60_000, 10) ?? Number.NaN

  const r: Record<string, number> = {
    peers,
    services,
    seed,
    aeBytesPerPeerPerSec: aeBytes / peers / secs,
    aeMsgsPerPeerPerSec: aeMsgs / peers / secs,
    rootMsgBytes: rootMsg.msgs === 0 ? Number.NaN : rootMsg.bytes / rootMsg.msgs,
    gossip99Ms: until(gossipTimes, peers, 0.99),
    gossip100Ms: until(gossipTimes, peers, 1),
    antiEntropy99Ms: until(aeTimes, peers, 0.99),
    antiEntropy100Ms: until(aeTimes, peers, 1),
    catchUpMs: catchUp,
    violations: sim.violations.length,
    wallMs: performance.now() - wall0,
  }
  printTable(`${peers} simulated peers, ${services} services, ${HOP_DELAY[0]}–${HOP_DELAY[1]} ms per hop, mesh degree 6, anti-entropy every 2 s, seed ${seed}${converged0 ? '' : ' (NOT converged at start!)'}`, [
    ['figure', 'measured'],
    ['anti-entropy bytes per peer per s, nothing changing', `${(r.aeBytesPerPeerPerSec ?? NaN).toFixed(1)} B/s`],
    ['  messages per peer per s (root + same)', (r.aeMsgsPerPeerPerSec ?? NaN).toFixed(2)],
    ['  size of a root digest message', `${(r.rootMsgBytes ?? NaN).toFixed(0)} B`],
    ['change held by 99 % / 100 % (gossip)', `${fmtMs(r.gossip99Ms ?? NaN)} / ${fmtMs(r.gossip100Ms ?? NaN)}`],
    ['change held by 99 % / 100 % (gossip lost: anti-entropy alone)', `${fmtMs(r.antiEntropy99Ms ?? NaN)} / ${fmtMs(r.antiEntropy100Ms ?? NaN)}`],
    ['peer down during 50 changes: catch-up after restart', fmtMs(r.catchUpMs ?? NaN)],
    ['invariant violations', String(sim.violations.length)],
    ['wall-clock time of this run', fmtMs(r.wallMs ?? NaN)],
  ])
  return r
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const peers = process.argv[2] === undefined ? undefined : Number(process.argv[2])
  const seed = process.argv[3] === undefined ? undefined : Number(process.argv[3])
  await runStateSimBench({ ...(peers === undefined ? {} : { peers }), ...(seed === undefined ? {} : { seed }) })
}
