/**
 * Membership at simulated scale: 1,000 peers (by default) on the deterministic simulation, with
 * 5–20 ms per network hop and a gossipsub-like mesh of degree 6.
 *
 * Measures, in simulated time: how long until 99 % / 100 % of peers know of a label change (a
 * plain broadcast) and of a crashed peer's death; and, at steady state, messages and bytes
 * (msgpack-encoded size) per peer per second. The cluster starts from an already-converged table
 * (every peer preloaded with every other as alive) to skip the join phase.
 *
 * `node bench/membership-sim.ts [peers] [seed]`, or runSimBench() from bench/membership.ts.
 */
import { pathToFileURL } from 'node:url'
import { MembershipSim } from '../src/sim/membership-cluster.ts'
import type { MemberRecord } from '../src/membership/types.ts'
import { encode } from '../src/transport/codec.ts'
import { fmtMs, printTable } from './stats.ts'

const HOP_DELAY: [number, number] = [5, 20]
const WARMUP_MS = 5_000
const STEADY_MS = 30_000

/** Time until `frac` of `n` observers knew, from the sorted list of times at which each learnt it. */
function until(times: number[], n: number, frac: number): number {
  const need = Math.ceil(n * frac)
  return times.length >= need ? (times[need - 1] as number) : Number.NaN
}

/** Run the simulated-scale benchmark; prints a table and returns the figures. */
export async function runSimBench(opts: { peers?: number; seed?: number } = {}): Promise<Record<string, number>> {
  const peers = opts.peers ?? 1000
  const seed = opts.seed ?? 1
  const wall0 = performance.now()
  const sim = new MembershipSim({ seed, faults: { delay: HOP_DELAY, loss: 0, dup: 0 }, sizeOf: (m) => encode(m).byteLength })
  const ids = sim.add(peers)
  const preload: MemberRecord[] = ids.map((id) => {
    const p = sim.peers.get(id)
    if (p === undefined) throw new Error(id)
    return { id, name: p.name, address: p.address, labels: p.labels, state: 'alive', incarnation: 0 }
  })
  for (const id of ids) sim.start(id, { preload })

  let suspicions = 0
  let deaths = 0
  sim.onChange((_o, m) => {
    if (m.state === 'suspect') suspicions++
    if (m.state === 'dead') deaths++
  })

  // Steady state.
  sim.runFor(WARMUP_MS)
  sim.resetTraffic()
  suspicions = 0
  deaths = 0
  sim.runFor(STEADY_MS)
  const secs = STEADY_MS / 1000
  let msgs = sim.traffic.gossipHops.msgs
  let bytes = sim.traffic.gossipHops.bytes
  for (const c of Object.values(sim.traffic.direct)) {
    msgs += c.msgs
    bytes += c.bytes
  }
  const pp = sim.traffic.direct['push-pull'] ?? { msgs: 0, bytes: 0 }
  const hops = sim.traffic.gossipHops.msgs
  const steadySuspicions = suspicions
  const steadyDeaths = deaths

  // A plain broadcast: one peer changes its labels.
  const changer = ids[7 % peers] as string
  const labelSeen = new Map<string, number>()
  const t0 = sim.sched.now()
  sim.onChange((o, m, _p, t) => {
    if (m.id === changer && m.labels.bench === 'changed' && !labelSeen.has(o) && o !== changer) labelSeen.set(o, t - t0)
  })
  sim.updateLabels(changer, { zone: 'z9', bench: 'changed' })
  sim.runUntil(() => labelSeen.size >= peers - 1, 10_000, 5)
  const labelTimes = [...labelSeen.values()].sort((a, b) => a - b)

  // A crash: one peer dies; everyone must list it dead.
  const victim = ids[13 % peers] as string
  const deadSeen = new Map<string, number>()
  const t1 = sim.sched.now()
  sim.onChange((o, m, _p, t) => {
    if (m.id === victim && m.state === 'dead' && !deadSeen.has(o)) deadSeen.set(o, t - t1)
  })
  sim.crash(victim)
  sim.runUntil(() => deadSeen.size >= peers - 1, 60_000, 10)
  const deadTimes = [...deadSeen.values()].sort((a, b) => a - b)
  const firstDead = deadTimes[0] ?? Number.NaN

  const r: Record<string, number> = {
    peers,
    seed,
    msgsPerPeerPerSec: msgs / peers / secs,
    bytesPerPeerPerSec: bytes / peers / secs,
    pushPullBytesPerPeerPerSec: pp.bytes / peers / secs,
    gossipHopsPerPeerPerSec: hops / peers / secs,
    steadySuspicions,
    steadyDeaths,
    broadcast99Ms: until(labelTimes, peers - 1, 0.99),
    broadcast100Ms: until(labelTimes, peers - 1, 1),
    deadFirstMs: firstDead,
    dead99Ms: until(deadTimes, peers - 1, 0.99),
    dead100Ms: until(deadTimes, peers - 1, 1),
    deadSpread99Ms: until(deadTimes, peers - 1, 0.99) - firstDead,
    violations: sim.violations.length,
    wallMs: performance.now() - wall0,
  }
  printTable(`${peers} simulated peers, ${HOP_DELAY[0]}–${HOP_DELAY[1]} ms per hop, mesh degree 6, seed ${seed} (started from a converged table; no join phase)`, [
    ['figure', 'measured', 'target'],
    ['label change known by 99 % / 100 %', `${fmtMs(r.broadcast99Ms ?? NaN)} / ${fmtMs(r.broadcast100Ms ?? NaN)}`, '99 % ≤ 2 s'],
    ['crash → first peer lists it dead', fmtMs(firstDead), ''],
    ['crash → dead known by 99 % / 100 %', `${fmtMs(r.dead99Ms ?? NaN)} / ${fmtMs(r.dead100Ms ?? NaN)}`, ''],
    ['first dead → 99 % know it', fmtMs(r.deadSpread99Ms ?? NaN), '≤ 2 s'],
    ['steady msgs per peer per s (all)', (r.msgsPerPeerPerSec ?? NaN).toFixed(1), ''],
    ['steady bytes per peer per s (all)', `${(r.bytesPerPeerPerSec ?? NaN).toFixed(0)} B/s`, ''],
    ['  of which push-pull', `${(r.pushPullBytesPerPeerPerSec ?? NaN).toFixed(0)} B/s`, ''],
    ['  gossip hops per peer per s', (r.gossipHopsPerPeerPerSec ?? NaN).toFixed(2), ''],
    ['false suspicions / deaths in 30 s steady', `${steadySuspicions} / ${steadyDeaths}`, '0 deaths'],
    ['invariant violations', String(sim.violations.length), '0'],
    ['wall-clock time of this run', fmtMs(r.wallMs ?? NaN), '< 2 min'],
  ])
  return r
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const peers = process.argv[2] === undefined ? undefined : Number(process.argv[2])
  const seed = process.argv[3] === undefined ? undefined : Number(process.argv[3])
  await runSimBench({ ...(peers === undefined ? {} : { peers }), ...(seed === undefined ? {} : { seed }) })
}
