/**
 * `npm run bench:election`: consensus figures on real `skein agent` processes on 127.0.0.1.
 *
 * - Leader failover with 3 and 5 peers: from `kill -9` of the leader until every survivor
 *   names the same new leader (polled every 10 ms), over RUNS runs each (default 20). The killed
 *   peer is restarted, and the cluster allowed to settle, before the next run.
 * - Commit latency: the leader proposes one entry at a time (POST /v1/debug/propose, agents run
 *   with --debug-api) and times each from proposal until the leader applied it (= committed:
 *   persisted by a majority). p50 and p99 over LATENCY_ENTRIES entries.
 * - Throughput: 10,000 entries proposed with up to 256 in flight; entries committed per second.
 * - RSS per peer after those entries, and the Raft log length left in each peer's store
 *   (compaction keeps it under ~1,000 entries plus what is not yet applied).
 *
 * Prints a table with the targets. Not a test: figures on a shared machine are noisy.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { stopAll, waitFor, type Agent } from '../test/integration/harness/agents.ts'
import { agreedLeader, byName, raftStatus, startCluster, waitForAgreedLeader, waitForVoters } from '../test/integration/harness/cluster.ts'
import { describeRaftTiming, resolveRaftTiming } from '../src/consensus/timing.ts'
import { fmtMs, percentile, printTable } from './stats.ts'

const RUNS = Number(process.env.RUNS ?? 20)
const LATENCY_ENTRIES = Number(process.env.LATENCY_ENTRIES ?? 500)
const THROUGHPUT_ENTRIES = Number(process.env.THROUGHPUT_ENTRIES ?? 10_000)
const ARGS = ['--log-level', 'warn', '--debug-api']

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024
}

/** Entries left in an agent's Raft log table (read-only look at its store). */
function logRows(a: Agent): number {
  const db = new DatabaseSync(join(a.dir, 'skein.db'), { readOnly: true })
  try {
    return (db.prepare('SELECT count(*) AS n FROM raft_entries').get() as { n: number }).n
  } finally {
    db.close()
  }
}

/** Every agent alive in every view, all agreeing on one leader that lists `voters` alive voters. */
async function settled(agents: Agent[], voters: number): Promise<void> {
  const l = await waitForAgreedLeader(agents, { timeoutMs: 30_000 })
  await waitForVoters(byName(agents, l.name), voters, 30_000)
  for (const a of agents) {
    await waitFor(`${a.name} sees ${agents.length} alive`, async () => (await a.nodes()).filter((n) => n.state === 'alive').length === agents.length, 30_000)
  }
  const leader = await raftStatus(byName(agents, l.name))
  await waitFor('every peer caught up', async () => (await Promise.all(agents.map((a) => raftStatus(a)))).every((s) => s.commitIndex >= leader.commitIndex), 10_000)
}

async function failover(n: number): Promise<number[]> {
  console.log(`\nfailover, ${n} peers: starting …`)
  const agents = await startCluster(n, { prefix: `f${n}-`, extraArgs: ARGS })
  await settled(agents, n)
  const times: number[] = []
  for (let run = 0; run < RUNS; run++) {
    const before = await waitForAgreedLeader(agents)
    const victim = byName(agents, before.name)
    const survivors = agents.filter((a) => a !== victim)
    await victim.kill9()
    const killedAt = performance.now()
    await waitFor(
      `survivors agree on a leader other than ${before.name}`,
      async () => {
        const l = await agreedLeader(survivors, 500)
        return l !== undefined && l.name !== before.name
      },
      15_000,
      10,
    )
    times.push(performance.now() - killedAt)
    process.stdout.write(`  run ${run + 1}/${RUNS}: ${fmtMs(times.at(-1)!)}\n`)
    victim.start(['--api', `127.0.0.1:${victim.apiPort}`, ...ARGS])
    await settled(agents, n)
  }
  await stopAll()
  return times
}

async function commits(): Promise<{ latencies: number[]; perSecond: number; rss: number[]; rows: number[]; applied: number }> {
  console.log('\ncommit latency and throughput, 3 peers: starting …')
  const agents = await startCluster(3, { prefix: 'c', extraArgs: ARGS })
  await settled(agents, 3)
  const leader = byName(agents, (await waitForAgreedLeader(agents)).name)
  const propose = async (count: number, window: number): Promise<{ elapsedMs: number; latenciesMs: number[]; lastIndex: number }> => {
    const res = await fetch(`http://127.0.0.1:${leader.apiPort}/v1/debug/propose`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await leader.apiToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ count, window }),
      signal: AbortSignal.timeout(300_000),
    })
    if (!res.ok) throw new Error(`debug/propose: HTTP ${res.status} ${await res.text()}`)
    return (await res.json()) as { elapsedMs: number; latenciesMs: number[]; lastIndex: number }
  }
  await propose(50, 1) // warm-up
  const lat = await propose(LATENCY_ENTRIES, 1)
  console.log(`  ${LATENCY_ENTRIES} entries one at a time: p50 ${fmtMs(percentile(lat.latenciesMs, 50))}`)
  const bulk = await propose(THROUGHPUT_ENTRIES, 256)
  const perSecond = THROUGHPUT_ENTRIES / (bulk.elapsedMs / 1000)
  console.log(`  ${THROUGHPUT_ENTRIES} entries, 256 in flight: ${perSecond.toFixed(0)} entries/s`)
  await waitFor('every peer applied the last entry', async () => (await Promise.all(agents.map((a) => raftStatus(a)))).every((s) => s.commitIndex >= bulk.lastIndex), 30_000)
  await new Promise((r) => setTimeout(r, 2000))
  const rss = await Promise.all(agents.map((a) => rssMb(a.proc!.pid!)))
  const rows = agents.map(logRows)
  await stopAll()
  return { latencies: lat.latenciesMs, perSecond, rss, rows, applied: bulk.lastIndex }
}

try {
  const f3 = await failover(3)
  const f5 = await failover(5)
  const c = await commits()
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
  printTable(`Raft on real peers, 127.0.0.1 (${RUNS} failovers each; defaults: ${describeRaftTiming(resolveRaftTiming())})`, [
    ['figure', 'measured', 'target'],
    ['failover, 3 peers, p50', fmtMs(percentile(f3, 50)), '≤ 600 ms'],
    ['failover, 3 peers, p99', fmtMs(percentile(f3, 99)), '≤ 1.5 s'],
    ['failover, 3 peers, max', fmtMs(Math.max(...f3)), ''],
    ['failover, 5 peers, p50', fmtMs(percentile(f5, 50)), '≤ 600 ms'],
    ['failover, 5 peers, p99', fmtMs(percentile(f5, 99)), '≤ 1.5 s'],
    ['failover, 5 peers, max', fmtMs(Math.max(...f5)), ''],
    [`commit latency p50 (3 peers, ${LATENCY_ENTRIES} entries, one at a time)`, `${percentile(c.latencies, 50).toFixed(1)} ms`, ''],
    ['commit latency p99', `${percentile(c.latencies, 99).toFixed(1)} ms`, ''],
    [`entries committed per second (${THROUGHPUT_ENTRIES}, 256 in flight)`, c.perSecond.toFixed(0), ''],
    [`RSS per peer after ${c.applied} entries (max)`, `${Math.max(...c.rss).toFixed(1)} MB`, ''],
    ['RSS per peer (mean)', `${mean(c.rss).toFixed(1)} MB`, ''],
    ['Raft log rows left per peer (max; compaction every 1,000)', String(Math.max(...c.rows)), '≤ ~1,000'],
  ])
} finally {
  await stopAll()
}
