/**
 * `npm run bench:failover`: how fast replicas run again, on real `skein agent` processes and the
 * real Docker engine (issue 5).
 *
 * 3 agents on 127.0.0.1 share one engine; each manages only the containers labelled
 * io.skein.host=<its peer id> (as in test/integration/running.test.ts). A service of 6 replicas of
 * local/busybox:1 (`sleep 3600`) runs across them. Over RUNS runs each (default 5):
 *
 * - Losing a host that is not the leader: from the SIGKILL of its agent (its containers are then
 *   removed with `docker rm -f` by its host label) until a surviving peer's GET /v1/replicas
 *   (polled every 25 ms) lists 6 replicas running on the other hosts AND `docker ps` by the
 *   cluster and service labels shows 6 running containers.
 * - Losing the leader's host: the same, the victim being the leader.
 * - Deploy: POST /v1/apply of a 10-replica service (what `skein apply` sends, minus the CLI's
 *   process start) until all 10 run (same two checks); the service is removed, and its
 *   containers gone, before the next run.
 *
 * After each loss the lost host comes back (its agent with its data dir) and the cluster settles
 * (3 alive everywhere, one agreed leader, 6 running) before the next run. Every loop is bounded
 * in count and time; every agent and every container labelled with this cluster is removed at the
 * end, also on failure. Not a test: figures on a shared machine are noisy.
 */
import { agentArgs, stopAll, waitFor, type Agent } from '../test/integration/harness/agents.ts'
import { startCluster, waitForAgreedLeader } from '../test/integration/harness/cluster.ts'
import { DOCKER_ENV, docker, removeLabelled } from '../test/integration/harness/docker.ts'
import { parseStackText } from '../src/model/index.ts'
import { fmtMs, percentile, printTable } from './stats.ts'
import type { ReplicaView as Replica } from '../src/api/replicas.ts'


const RUNS = Math.max(1, Number(process.env.RUNS ?? 5))
const POLL_MS = 25
const LOSS_TIMEOUT_MS = 60_000
const DEPLOY_TIMEOUT_MS = 30_000
const SETTLE_TIMEOUT_MS = 60_000
const ARGS = ['--log-level', 'warn']
const IMAGE = 'local/busybox:1'
const WEB = 'web'
const BURST = 'burst'


let clusterId: string | undefined

/** Containers of this cluster's service (running ones only unless `all`). */
function dockerCount(service: string, all = false): number {
  const filters = ['--filter', `label=io.skein.cluster=${clusterId}`, '--filter', `label=io.skein.service=${service}`]
  return docker(['ps', ...(all ? ['-a'] : []), '-q', ...filters]).split('\n').filter((x) => x !== '').length
}

const tokens = new Map<Agent, string>()
async function api<T>(a: Agent, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 1000): Promise<T> {
  let token = tokens.get(a)
  if (token === undefined) tokens.set(a, (token = await a.apiToken()))
  const res = await fetch(`http://127.0.0.1:${a.apiPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  })
  if (!res.ok) throw new Error(`${a.name} ${method} ${path}: HTTP ${res.status} ${await res.text()}`)
  return (await res.json()) as T
}

const replicas = (a: Agent, service: string): Promise<Replica[]> => api<Replica[]>(a, 'GET', `/v1/replicas?service=${service}`)

function stack(name: string, service: string, count: number): unknown {
  const r = parseStackText(`stack: ${name}\nservices:\n  ${service}:\n    image: ${IMAGE}\n    command: [sleep, "3600"]\n    replicas: ${count}\n    restart: { condition: any, delay: 200ms }\n`)
  if (!r.ok) throw new Error(`bad stack: ${r.errors.map((e) => e.text).join('; ')}`)
  return r.stack
}

async function apply(a: Agent, s: unknown): Promise<void> {
  await api(a, 'POST', '/v1/apply', { stack: s, prune: false }, 30_000)
}

/**
 * Poll `a` every POLL_MS until it lists `count` replicas of `service` running (none on `notHost`)
 * and `docker ps` agrees; the elapsed time from `t0` when both held. Bounded by `timeoutMs`.
 */
async function untilRunning(a: Agent, service: string, count: number, t0: number, timeoutMs: number, notHost?: string): Promise<number> {
  const deadline = t0 + timeoutMs
  let last = ''
  while (performance.now() < deadline) {
    try {
      const up = (await replicas(a, service)).filter((r) => r.state === 'running' && (notHost === undefined || r.hostId !== notHost))
      last = `${up.length} running via ${a.name}`
      if (up.length === count) {
        const inDocker = dockerCount(service)
        last += `, ${inDocker} in docker`
        if (inDocker === count) return performance.now() - t0
      }
    } catch (err) {
      last = String(err)
    }
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${count} ${service} replicas running (last: ${last})`)
}

/** 3 alive in every view, one agreed leader, 6 web replicas running (API and docker, exactly 6). */
async function settled(agents: Agent[]): Promise<void> {
  await waitForAgreedLeader(agents, { timeoutMs: SETTLE_TIMEOUT_MS })
  for (const a of agents) {
    await waitFor(`${a.name} sees ${agents.length} alive`, async () => (await a.nodes()).filter((n) => n.state === 'alive').length === agents.length, SETTLE_TIMEOUT_MS, 100)
  }
  for (const a of agents) {
    await waitFor(`${a.name} lists 6 ${WEB} running and docker runs exactly 6`, async () => {
      const up = (await replicas(a, WEB)).filter((r) => r.state === 'running')
      return up.length === 6 && dockerCount(WEB, true) === 6 && dockerCount(WEB) === 6
    }, SETTLE_TIMEOUT_MS, 100)
  }
}

async function loseHost(agents: Agent[], leaderLoss: boolean, run: number): Promise<number> {
  await settled(agents)
  const leader = await waitForAgreedLeader(agents)
  const nonLeaders = agents.filter((a) => a.name !== leader.name)
  const victim = leaderLoss ? (agents.find((a) => a.name === leader.name) as Agent) : (nonLeaders[run % nonLeaders.length] as Agent)
  const survivors = agents.filter((a) => a !== victim)
  const watcher = survivors[run % survivors.length] as Agent
  const victimId = await victim.id()
  // The clock starts at the kill: the removal of the containers is part of losing the host.
  const t0 = performance.now()
  await victim.kill9()
  removeLabelled(`io.skein.cluster=${clusterId}`, `io.skein.host=${victimId}`)
  const removedAfter = performance.now() - t0
  const ms = await untilRunning(watcher, WEB, 6, t0, LOSS_TIMEOUT_MS, victimId)
  process.stdout.write(`  run ${run + 1}/${RUNS}: lost ${victim.name}${leaderLoss ? ' (leader)' : ''}, watched ${watcher.name}: ${fmtMs(ms)} (containers removed after ${fmtMs(removedAfter)})\n`)
  victim.start(agentArgs(victim, { name: victim.name, extraArgs: ARGS }))
  await settled(agents)
  return ms
}

async function deploy(agents: Agent[], run: number): Promise<number> {
  await settled(agents)
  const via = agents[run % agents.length] as Agent
  const s = stack(BURST, BURST, 10)
  const t0 = performance.now()
  await apply(via, s)
  const ms = await untilRunning(via, BURST, 10, t0, DEPLOY_TIMEOUT_MS)
  process.stdout.write(`  run ${run + 1}/${RUNS}: apply via ${via.name}: ${fmtMs(ms)}\n`)
  await api(via, 'POST', '/v1/services/remove', { names: [BURST] }, 30_000)
  await waitFor(`${BURST} containers gone`, async () => {
    const left = (await Promise.all(agents.map((a) => replicas(a, BURST)))).reduce((n, l) => n + l.length, 0)
    return left === 0 && dockerCount(BURST, true) === 0
  }, DEPLOY_TIMEOUT_MS, 100)
  return ms
}

const nonLeader: number[] = []
const leaderLoss: number[] = []
const deploys: number[] = []
let failure: unknown
try {
  console.log('starting 3 agents on 127.0.0.1 with the real Docker engine …')
  const agents = await startCluster(3, { prefix: 'fo', env: DOCKER_ENV, extraArgs: ARGS })
  clusterId = (await agents[0]!.status())['clusterId'] as string
  if (!/^[0-9a-f]+$/.test(clusterId)) throw new Error(`unexpected cluster id ${clusterId}`)
  await waitForAgreedLeader(agents)
  await apply(agents[1]!, stack('bench', WEB, 6))
  await settled(agents)

  console.log(`\ndeploy of a ${10}-replica service (image present), ${RUNS} runs:`)
  for (let run = 0; run < RUNS; run++) deploys.push(await deploy(agents, run))
  console.log(`\nlosing a host that is not the leader, ${RUNS} runs:`)
  for (let run = 0; run < RUNS; run++) nonLeader.push(await loseHost(agents, false, run))
  console.log(`\nlosing the leader's host, ${RUNS} runs:`)
  for (let run = 0; run < RUNS; run++) leaderLoss.push(await loseHost(agents, true, run))
} catch (err) {
  failure = err
  console.error(`\nbench failed: ${err instanceof Error ? err.message : String(err)}`)
} finally {
  await stopAll()
  if (clusterId !== undefined) {
    try {
      removeLabelled(`io.skein.cluster=${clusterId}`)
    } catch (err) {
      console.error(`cleanup of io.skein.cluster=${clusterId} failed: ${String(err)}`)
    }
  }
}

const cell = (xs: number[], p: number): string => (xs.length === 0 ? '—' : fmtMs(percentile(xs, p)))
const runs = (xs: number[]): string => `${xs.length}/${RUNS}`
printTable(`Failover on real peers, 3 agents on 127.0.0.1, one Docker engine, ${IMAGE} (p50 / p95 over the runs; polled every ${POLL_MS} ms)`, [
  ['figure', 'runs', 'p50', 'p95', 'target (p50)', 'Swarm (testbed.md, 3 managers)*'],
  ['lose a host that is not the leader, until 6 run again', runs(nonLeader), cell(nonLeader, 50), cell(nonLeader, 95), '≤ 3 s', '19.3–20.0 s'],
  ["lose the leader's host, until 6 run again", runs(leaderLoss), cell(leaderLoss, 50), cell(leaderLoss, 95), '≤ 4 s', '61.6 s'],
  ['apply a 10-replica service, until 10 run (image present)', runs(deploys), cell(deploys, 50), cell(deploys, 95), '≤ 1.5 s', '4.4–5.7 s (deploy, 6 replicas)'],
])
console.log('* Swarm: quoted from /work/shared/testbed.md (namespace hosts, 6 replicas), NOT measured in this run; `npm run bench:compare` runs both side by side.')
if (failure !== undefined) process.exitCode = 1
