import { cli, startAgent, waitFor, type Agent } from './agents.ts'

/**
 * Helpers for consensus tests and benchmarks on top of the agent harness: start a cluster whose
 * voters are all in place, and find the leader that every running agent agrees on.
 */

/** The consensus part of GET /v1/status. */
export interface RaftStatusView {
  name: string
  leader: string | null
  leaderId: string | null
  term: number
  role: 'leader' | 'follower' | 'candidate' | 'pre-candidate' | 'learner'
  commitIndex: number
}

/** One row of GET /v1/voters. */
export interface VoterRow {
  id: string
  name: string | null
  role: 'voter' | 'learner'
  match: number | null
  health: string
  leader: boolean
  self: boolean
}

export async function raftStatus(a: Agent, timeoutMs = 2000): Promise<RaftStatusView> {
  const res = await fetch(`http://127.0.0.1:${a.apiPort}/v1/status`, {
    headers: { authorization: `Bearer ${await a.apiToken()}` },
    signal: AbortSignal.timeout(timeoutMs),
  })
  if (!res.ok) throw new Error(`${a.name} status: HTTP ${res.status}`)
  return (await res.json()) as RaftStatusView
}

export async function voters(a: Agent): Promise<VoterRow[]> {
  return await a.get<VoterRow[]>('/v1/voters')
}

/**
 * The leader every agent in `agents` names, at the same term, with exactly one of them saying it
 * is the leader; undefined while they disagree or one does not answer.
 */
export async function agreedLeader(agents: readonly Agent[], timeoutMs = 1000): Promise<{ name: string; term: number } | undefined> {
  const all = await Promise.all(agents.map((a) => raftStatus(a, timeoutMs).catch(() => undefined)))
  const first = all[0]
  if (first === undefined || first.leader === null) return undefined
  for (const s of all) if (s === undefined || s.leader !== first.leader || s.term !== first.term) return undefined
  const leaders = all.filter((s) => s?.role === 'leader')
  if (leaders.length !== 1 || leaders[0]?.name !== first.leader) return undefined
  return { name: first.leader, term: first.term }
}

/** Wait until every agent agrees on one leader (optionally not `not`); returns it. */
export async function waitForAgreedLeader(agents: readonly Agent[], opts: { not?: string; timeoutMs?: number; everyMs?: number } = {}): Promise<{ name: string; term: number }> {
  return await waitFor(
    `${agents.map((a) => a.name).join(', ')} to agree on a leader${opts.not === undefined ? '' : ` other than ${opts.not}`}`,
    async () => {
      const l = await agreedLeader(agents)
      return l !== undefined && l.name !== opts.not ? l : undefined
    },
    opts.timeoutMs ?? 20_000,
    opts.everyMs ?? 50,
  )
}

/** Wait until `a` (through its own API) lists `count` voters, all alive. */
export async function waitForVoters(a: Agent, count: number, timeoutMs = 30_000): Promise<VoterRow[]> {
  return await waitFor(
    `${a.name} to list ${count} voters`,
    async () => {
      const v = await voters(a)
      const vs = v.filter((x) => x.role === 'voter')
      const ok = vs.length === count && vs.every((x) => x.health === 'alive')
      return ok ? v : undefined
    },
    timeoutMs,
    100,
  )
}

/**
 * Start `n` agents: the first creates the cluster, the others join it through the first. Waits
 * until the first lists min(n, maxVoters) voters. `extraArgs` go to every agent.
 */
export async function startCluster(n: number, opts: { prefix?: string; extraArgs?: string[]; maxVoters?: number; env?: Record<string, string> } = {}): Promise<Agent[]> {
  const prefix = opts.prefix ?? 'c'
  const extraArgs = opts.extraArgs ?? []
  const env = opts.env ?? {}
  const first = await startAgent({ name: `${prefix}1`, extraArgs, env })
  await waitFor(`${first.name} to lead its new cluster`, async () => (await raftStatus(first)).role === 'leader', 20_000)
  const t = await cli(['token', '--data-dir', first.dir])
  if (t.code !== 0) throw new Error(`skein token failed: ${t.stderr}`)
  const token = t.stdout.trim()
  const agents = [first]
  for (let i = 2; i <= n; i++) agents.push(await startAgent({ name: `${prefix}${i}`, join: [first.address], token, extraArgs, env }))
  await waitForVoters(first, Math.min(n, opts.maxVoters ?? 5))
  return agents
}

/** The agent with that name. */
export function byName(agents: readonly Agent[], name: string): Agent {
  const a = agents.find((x) => x.name === name)
  if (a === undefined) throw new Error(`no agent named ${name}`)
  return a
}
