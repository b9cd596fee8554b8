/**
 * `npm run bench:membership`: membership figures on real peers and on the simulation.
 *
 * - 5 real `skein agent` processes on 127.0.0.1: failure detection time (kill -9 until every
 *   other peer lists the victim dead) over RUNS runs, idle RSS per peer, idle bytes/s per peer.
 * - 1,000 simulated peers (bench/membership-sim.ts): time until 99% / 100% know of a change,
 *   messages and bytes per peer per second.
 *
 * Prints figures with the targets from the issue. Not a test: figures on a shared machine are noisy.
 */
import { readFile } from 'node:fs/promises'
import { cli, startAgent, stopAll, waitFor, type Agent } from '../test/integration/harness/agents.ts'
import { runSimBench } from './membership-sim.ts'
import { fmtMs, percentile, printTable } from './stats.ts'

const RUNS = Number(process.env.RUNS ?? 7)
const PEERS = 5

interface Mem {
  rss: number
  /** Anonymous (private) resident memory: heap, buffers, stacks. */
  anon: number
  /** Proportional set size: shared pages (the Node binary) divided among the processes mapping them. */
  pss: number
}

/** Memory of a process in MB, from /proc. */
async function memMb(pid: number): Promise<Mem> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8')
  const kb = (text: string, key: string): number => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN) / 1024
  return { rss: kb(status, 'VmRSS'), anon: kb(status, 'RssAnon'), pss: kb(rollup, 'Pss') }
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

async function transportBytes(a: Agent): Promise<number> {
  const s = (await a.status()) as { transport?: { bytesIn: number; bytesOut: number } }
  if (!s.transport) throw new Error('status has no transport counters')
  return s.transport.bytesIn + s.transport.bytesOut
}

async function allAlive(agents: Agent[]): Promise<void> {
  for (const a of agents) {
    await waitFor(`${a.name} sees ${agents.length} alive`, async () => (await a.nodes()).filter((n) => n.state === 'alive').length === agents.length, 30_000)
  }
}

async function realPeers(): Promise<void> {
  console.log(`starting ${PEERS} agents on 127.0.0.1 …`)
  const first = await startAgent({ name: 'b1', extraArgs: ['--log-level', 'warn'] })
  await waitFor('b1 API', async () => (await first.nodes()).length === 1)
  const token = (await cli(['token', '--data-dir', first.dir])).stdout.trim()
  const agents = [first]
  for (let i = 2; i <= PEERS; i++) agents.push(await startAgent({ name: `b${i}`, join: [first.address], token, extraArgs: ['--log-level', 'warn'] }))
  await allAlive(agents)

  console.log('idle for 10 s …')
  await new Promise((r) => setTimeout(r, 3000))
  const before = await Promise.all(agents.map(transportBytes))
  const t0 = Date.now()
  await new Promise((r) => setTimeout(r, 10_000))
  const after = await Promise.all(agents.map(transportBytes))
  const secs = (Date.now() - t0) / 1000
  const bps = agents.map((_, i) => (after[i]! - before[i]!) / secs)
  const mem = await Promise.all(agents.map((a) => memMb(a.proc!.pid!)))

  const detect: number[] = []
  for (let run = 0; run < RUNS; run++) {
    const victim = agents[1 + (run % (PEERS - 1))]!
    const id = await victim.id()
    const others = agents.filter((a) => a !== victim)
    const killedAt = Date.now()
    await victim.kill9()
    const seenAt = await Promise.all(
      others.map((a) => waitFor(`${a.name} marks ${victim.name} dead`, async () => ((await a.nodes()).find((n) => n.id === id)?.state === 'dead' ? Date.now() : undefined), 30_000, 25)),
    )
    detect.push(Math.max(...seenAt) - killedAt)
    process.stdout.write(`  run ${run + 1}/${RUNS}: ${fmtMs(detect.at(-1)!)}\n`)
    victim.start(['--api', `127.0.0.1:${victim.apiPort}`, '--log-level', 'warn'])
    await allAlive(agents)
  }
  await stopAll()

  printTable('5 real peers on 127.0.0.1', [
    ['figure', 'measured', 'target'],
    ['failure detection p50', fmtMs(percentile(detect, 50)), '≤ 2 s'],
    ['failure detection p95', fmtMs(percentile(detect, 95)), ''],
    ['idle RSS per peer (max)', `${Math.max(...mem.map((m) => m.rss)).toFixed(1)} MB`, '≤ 80 MB'],
    ['idle RSS per peer (mean)', `${mean(mem.map((m) => m.rss)).toFixed(1)} MB`, ''],
    ['  of which private (anon), mean', `${mean(mem.map((m) => m.anon)).toFixed(1)} MB`, ''],
    ['  PSS (shared pages split), mean', `${mean(mem.map((m) => m.pss)).toFixed(1)} MB`, ''],
    ['idle bytes/s per peer (mean, in+out)', `${mean(bps).toFixed(0)} B/s`, ''],
  ])
}

try {
  await realPeers()
  await runSimBench({ peers: Number(process.env.SIM_PEERS ?? 1000) })
} finally {
  await stopAll()
}
