/**
 * `npm run bench:state`: desired-state figures.
 *
 * - Real processes: five `skein agent`s on 127.0.0.1. APPLIES times (default 20), a write (a
 *   scale of one service, through POST /v1/services/scale) is made at peer i mod 5, and every
 *   peer's GET /v1/services is polled every 5 ms until all five show it: p50 / p95 / max of the
 *   time from the write's acknowledgement until the last peer showed it.
 * - Simulation: runStateSimBench (bench/state-sim.ts): 1,000 peers, 99 % / 100 % times, and
 *   anti-entropy bytes per peer per second with 500 services and nothing changing.
 *
 * Not a test: figures on a shared machine are noisy. Every loop is bounded; the agents are
 * killed (by the harness, by pid) and their data dirs removed at the end.
 */
import { stopAll, waitFor, type Agent } from '../test/integration/harness/agents.ts'
import { startCluster } from '../test/integration/harness/cluster.ts'
import { runStateSimBench } from './state-sim.ts'
import { fmtMs, percentile, printTable } from './stats.ts'

const APPLIES = Math.max(10, Number(process.env.APPLIES ?? 20))
const POLL_MS = 5

interface Row {
  name: string
  replicas: number | null
}

async function post(a: Agent, path: string, body: unknown, token: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${a.apiPort}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  })
  if (!res.ok) throw new Error(`${a.name} ${path}: HTTP ${res.status} ${await res.text()}`)
}

async function replicasAt(a: Agent, token: string): Promise<number | null | undefined> {
  const res = await fetch(`http://127.0.0.1:${a.apiPort}/v1/services`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2000) })
  if (!res.ok) return undefined
  return ((await res.json()) as Row[]).find((s) => s.name === 'bench')?.replicas
}

async function realPeers(): Promise<number[]> {
  console.log('starting 5 agents …')
  const agents = await startCluster(5, { prefix: 'st', extraArgs: ['--log-level', 'warn'] })
  const tokens = await Promise.all(agents.map((a) => a.apiToken()))
  const first = agents[0] as Agent
  await post(first, '/v1/apply', { stack: { name: 'bench', services: [{ stack: 'bench', name: 'bench', image: 'nginx:1.27', replicas: 0 }] } }, tokens[0] as string)
  await waitFor('every peer to hold the bench service', async () => (await Promise.all(agents.map((a, i) => replicasAt(a, tokens[i] as string)))).every((r) => r === 0), 20_000)
  const times: number[] = []
  for (let i = 1; i <= APPLIES; i++) {
    const k = (i - 1) % agents.length
    const at = agents[k] as Agent
    await post(at, '/v1/services/scale', { services: [{ name: 'bench', replicas: i }] }, tokens[k] as string)
    const t0 = performance.now()
    const pending = new Set(agents.map((_, j) => j))
    const deadline = t0 + 30_000
    while (pending.size > 0 && performance.now() < deadline) {
      await Promise.all([...pending].map(async (j) => {
        const r = await replicasAt(agents[j] as Agent, tokens[j] as string).catch(() => undefined)
        if (r === i) pending.delete(j)
      }))
      if (pending.size > 0) await new Promise((ok) => setTimeout(ok, POLL_MS))
    }
    if (pending.size > 0) throw new Error(`apply ${i} did not reach ${pending.size} peers within 30 s`)
    times.push(performance.now() - t0)
    process.stdout.write(`  apply ${i}/${APPLIES} at ${at.name}: ${fmtMs(times.at(-1) as number)}\n`)
  }
  return times
}

try {
  const times = await realPeers()
  await stopAll()
  printTable(`apply → visible on all 5 real peers (loopback, ${APPLIES} applies, polled every ${POLL_MS} ms; includes the polling)`, [
    ['figure', 'measured'],
    ['p50', fmtMs(percentile(times, 50))],
    ['p95', fmtMs(percentile(times, 95))],
    ['max', fmtMs(Math.max(...times))],
  ])
  await runStateSimBench()
} finally {
  await stopAll()
}
