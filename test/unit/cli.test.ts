import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createApiServer, type ApiServer } from '../../src/api/server.ts'
import type { NodeView, PeerApi, StatusView } from '../../src/api/types.ts'
import type { VoterView } from '../../src/api/types.ts'
import { formatNodes, formatStatus, formatVoters } from '../../src/cli/cluster.ts'
import { drainStuck, formatEvent, formatLogItem } from '../../src/cli/running.ts'
import { SkeinError } from '../../src/core/errors.ts'
import { runCli, type CliDeps } from '../../src/cli/program.ts'
import { formatDuration, formatTable, shortId } from '../../src/cli/table.ts'
import { silentLogger } from '../../src/core/logger.ts'
import type { AgentOptions } from '../../src/peer/agent.ts'
import { writeApiInfo } from '../../src/peer/datadir.ts'
import { encodeJoinToken, parseJoinToken } from '../../src/peer/token.ts'

const NOW = Date.parse('2025-06-01T12:00:00.000Z')

interface Run {
  code: number
  stdout: string
  stderr: string
  agents: AgentOptions[]
}

async function run(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const agents: AgentOptions[] = []
  const deps: CliDeps = {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    env: { HOME: '/nonexistent-home', ...env },
    now: () => NOW,
    runAgent: async (o) => void agents.push(o),
  }
  const code = await runCli(args, deps)
  return { code, stdout, stderr, agents }
}

const oneLine = (s: string): void => expect(s.trimEnd().split('\n')).toHaveLength(1)

const NODES: NodeView[] = [
  { id: '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', name: 'alpha', address: '10.0.0.1:7420', state: 'alive', labels: { zone: 'a', gpu: 'yes' }, incarnation: 3, since: '2025-06-01T11:59:15.000Z', self: true, drained: false },
  { id: '12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB', name: 'beta', address: '10.0.0.2:7420', state: 'suspect', labels: {}, incarnation: 0, since: '2025-06-01T10:00:00.000Z', self: false, drained: true },
]
const STATUS: StatusView = {
  id: NODES[0]!.id,
  name: 'alpha',
  clusterId: 'abcdef012345',
  address: '10.0.0.1:7420',
  labels: { zone: 'a' },
  incarnation: 3,
  members: { alive: 1, suspect: 1, dead: 0, left: 0, total: 2 },
  startedAt: '2025-06-01T11:00:00.000Z',
  uptimeSeconds: 3725,
  version: '9.9.9',
  pid: 7,
  leader: 'beta',
  leaderId: NODES[1]!.id,
  term: 4,
  role: 'follower',
  commitIndex: 17,
  appliedIndex: 16,
}

const VOTERS: VoterView[] = [
  { id: NODES[1]!.id, name: 'beta', role: 'voter', match: 17, health: 'suspect', leader: true, self: false },
  { id: NODES[0]!.id, name: 'alpha', role: 'voter', match: 16, health: 'alive', leader: false, self: true },
  { id: '12D3KooWCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC', name: null, role: 'learner', match: null, health: 'unknown', leader: false, self: false },
]

describe('agent flags', () => {
  const token = encodeJoinToken(new Uint8Array(randomBytes(32)))

  it('parses every flag into AgentOptions', async () => {
    const r = await run([
      'agent', '--data-dir', '/tmp/x', '--listen', '127.0.0.1:0', '--advertise', 'node1.lan:7420', '--api', '127.0.0.1:7521',
      '--join', '10.0.0.1:7420', '--join', '10.0.0.2,/ip4/10.0.0.3/tcp/7420', '--token', token, '--name', 'n1',
      '--label', 'zone=a', '--label', 'gpu=yes', '--label', 'zone=b', '--log-level', 'debug',
    ])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.agents).toEqual([
      {
        dataDir: '/tmp/x',
        listen: '127.0.0.1:0',
        advertise: 'node1.lan:7420',
        api: '127.0.0.1:7521',
        join: ['10.0.0.1:7420', '10.0.0.2:7420', '/ip4/10.0.0.3/tcp/7420'],
        token,
        name: 'n1',
        labels: { zone: 'b', gpu: 'yes' },
        logLevel: 'debug',
      },
    ])
    expect(parseJoinToken(r.agents[0]!.token!)).toHaveLength(32)
  })

  it('accepts IPv6 and host names, and fills in the default join port', async () => {
    const r = await run(['agent', '--listen', '[::]:7420', '--api', '[::1]:0', '--advertise', 'h.example:7420', '--join', '[fe80::1]', '--join', 'seed.lan'])
    expect(r.stderr).toBe('')
    expect(r.agents[0]).toMatchObject({ listen: '[::]:7420', api: '[::1]:0', advertise: 'h.example:7420', join: ['[fe80::1]:7420', 'seed.lan:7420'] })
    const bad = await run(['agent', '--listen', '::1:7420'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/brackets/)
  })

  it('parses the Raft flags', async () => {
    const r = await run(['agent', '--voters', '3', '--raft-timing', 'wan', '--raft-election-ticks', '30', '--debug-api'])
    expect(r.stderr).toBe('')
    expect(r.agents[0]).toMatchObject({ voters: 3, raftTiming: { preset: 'wan', electionTicks: 30 }, debugApi: true })
    const lan = await run(['agent', '--raft-tick-ms', '20', '--raft-heartbeat-ticks', '3'])
    expect(lan.agents[0]?.raftTiming).toEqual({ tickMs: 20, heartbeatTicks: 3 })
  })

  it('parses --restart-grace as a duration (0 disables)', async () => {
    expect((await run(['agent', '--restart-grace', '2m'])).agents[0]).toMatchObject({ restartGraceMs: 120_000 })
    expect((await run(['agent', '--restart-grace', '0'])).agents[0]).toMatchObject({ restartGraceMs: 0 })
  })

  it('leaves unset flags undefined so the data dir can supply them', async () => {
    const r = await run(['agent'], { SKEIN_DATA_DIR: '/srv/skein' })
    expect(r.agents).toEqual([{ dataDir: '/srv/skein', logLevel: 'info' }])
  })

  it.each([
    [['agent', '--label', 'foo'], /key=value/],
    [['agent', '--label', 'bad key=1'], /label key/],
    [['agent', '--listen', '127.0.0.1:99999'], /above 65535/],
    [['agent', '--listen', '127.0.0.1'], /port is missing/],
    [['agent', '--api', 'localhost:http'], /not a port number/],
    [['agent', '--advertise', '10.0.0.1:0'], /port 0/],
    [['agent', '--join', ''], /empty/],
    [['agent', '--token', 'skein1-short'], /cut short/],
    [['agent', '--name', '-x'], /node name/],
    [['agent', '--log-level', 'loud'], /Allowed choices/],
    [['agent', '--bogus'], /unknown option/],
    [['agent', '--voters', '4'], /odd number/],
    [['agent', '--voters', '0'], /positive integer/],
    [['agent', '--voters', '11'], /odd number from 1 to 9/],
    [['agent', '--raft-timing', 'moon'], /Allowed choices/],
    [['agent', '--raft-election-ticks', '4', '--raft-heartbeat-ticks', '4'], /heartbeat .* must be shorter/],
    [['agent', '--raft-tick-ms', 'fast'], /not a positive integer/],
    [['agent', '--restart-grace', '30'], /not a duration/],
    [['agent', '--restart-grace', '-5s'], /not a duration/],
    [['agent', '--restart-grace', '2h'], /at most 1h/],
    [['frobnicate'], /unknown command/],
  ])('%j is a usage error (exit 2, one line)', async (args, pattern) => {
    const r = await run(args)
    expect(r.code).toBe(2)
    expect(r.agents).toEqual([])
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(pattern)
    oneLine(r.stderr)
  })

  it('prints help and the version', async () => {
    const help = await run(['--help'])
    expect(help.code).toBe(0)
    for (const c of ['agent', 'nodes', 'status', 'leave', 'token', 'voters']) expect(help.stdout).toContain(c)
    const v = await run(['--version'])
    expect(v.code).toBe(0)
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
    const none = await run([])
    expect(none.code).toBe(2)
    expect(none.stdout).toContain('Usage: skein')
  })
})

describe('table formatting', () => {
  it('aligns columns without trailing spaces', () => {
    const out = formatTable(['A', 'LONGER'], [['xxxx', 'y'], ['z', '']])
    expect(out).toBe('A     LONGER\nxxxx  y\nz\n')
  })
  it('formats durations and ids', () => {
    expect(formatDuration(45_000)).toBe('45s')
    expect(formatDuration(192_000)).toBe('3m12s')
    expect(formatDuration(3 * 3600_000)).toBe('3h')
    expect(formatDuration(50 * 3600_000)).toBe('2d2h')
    expect(formatDuration(-5)).toBe('0s')
    expect(shortId('12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAZ')).toBe('12D3KooWAAAA…AAAAAZ')
    expect(shortId('short')).toBe('short')
  })
  it('renders nodes: marker, short ids, age, labels', () => {
    const lines = formatNodes(NODES, NOW).trimEnd().split('\n')
    expect(lines[0]).toMatch(/^\s+NAME\s+ID\s+ADDRESS\s+STATE\s+DRAIN\s+INC\s+SINCE\s+LABELS$/)
    expect(lines[1]).toMatch(/^\*\s+alpha\s+12D3KooWAAAA…AAAAAA\s+10\.0\.0\.1:7420\s+alive\s+3\s+45s\s+gpu=yes,zone=a$/)
    expect(lines[2]).toMatch(/^\s+beta\s+\S+\s+10\.0\.0\.2:7420\s+suspect\s+DRAINED\s+0\s+2h\s+-$/)
    expect(formatNodes(NODES, NOW, true)).toContain(NODES[1]!.id)
  })
  it('renders status', () => {
    const out = formatStatus(STATUS)
    expect(out).toMatch(/^cluster\s+abcdef012345$/m)
    expect(out).toMatch(/^members\s+1 alive, 1 suspect, 0 dead, 0 left \(2 total\)$/m)
    expect(out).toMatch(/^uptime\s+1h2m$/m)
  })
})

describe('client commands against an API server', () => {
  const apiToken = randomBytes(32).toString('hex')
  let server: ApiServer
  let dir: string
  let leaves = 0
  const removals: string[] = []

  beforeEach(async () => {
    leaves = 0
    removals.length = 0
    dir = mkdtempSync(join(tmpdir(), 'skein-cli-'))
    const peer: PeerApi = {
      status: () => STATUS,
      nodes: () => NODES,
      leave: async () => {
        leaves++
        setImmediate(() => void server.close())
        return { left: true, id: STATUS.id, name: STATUS.name }
      },
      voters: async () => VOTERS,
      removeVoter: async (name, opts) => {
        removals.push(`${name}${opts.force ? ' --force' : ''}`)
        if (name === 'nobody') throw new SkeinError('not-a-voter', 'no voter or learner is named nobody', { hint: '`skein voters` lists them' })
        return { removed: true, id: NODES[1]!.id, name, forced: opts.force }
      },
    }
    server = await createApiServer({ listen: '127.0.0.1:0', token: apiToken, peer, logger: silentLogger() })
  })
  afterEach(async () => {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const useDataDir = (): void => {
    writeApiInfo(dir, { address: server.address, pid: process.pid, startedAt: new Date().toISOString(), version: '0' })
    writeFileSync(join(dir, 'api.token'), `${apiToken}\n`, { mode: 0o600 })
  }

  it('nodes finds the agent through --data-dir (api.json + api.token)', async () => {
    useDataDir()
    const r = await run(['nodes', '--data-dir', dir])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(formatNodes(NODES, NOW))
  })

  it('nodes --json prints the array with the documented fields', async () => {
    const r = await run(['nodes', '--json', '--api', server.address], { SKEIN_TOKEN: apiToken })
    expect(r.code).toBe(0)
    const parsed = JSON.parse(r.stdout) as Record<string, unknown>[]
    expect(parsed).toEqual(NODES)
    for (const n of parsed) expect(Object.keys(n)).toEqual(expect.arrayContaining(['id', 'name', 'address', 'state', 'labels', 'incarnation', 'since', 'self']))
  })

  it('status, human and --json', async () => {
    useDataDir()
    const human = await run(['status', '--data-dir', dir])
    expect(human.stdout).toBe(formatStatus(STATUS))
    const json = await run(['status', '--json'], { SKEIN_DATA_DIR: dir })
    expect(JSON.parse(json.stdout)).toEqual(STATUS)
  })

  it('a wrong API token is one line and exit 1', async () => {
    const r = await run(['nodes', '--api', server.address], { SKEIN_TOKEN: 'wrong-token' })
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^skein: the skein agent at 127\.0\.0\.1:\d+ refused the API token/)
    oneLine(r.stderr)
  })

  it('status shows the leader, role, term and commit index', () => {
    const out = formatStatus(STATUS)
    expect(out).toMatch(/^leader\s+beta$/m)
    expect(out).toMatch(/^role\s+follower$/m)
    expect(out).toMatch(/^term\s+4$/m)
    expect(out).toMatch(/^commit\s+17 \(applied 16\)$/m)
    expect(formatStatus({ ...STATUS, leader: null })).toMatch(/^leader\s+\(none\)$/m)
  })

  it('voters, human and --json', async () => {
    useDataDir()
    const human = await run(['voters', '--data-dir', dir])
    expect(human.stderr).toBe('')
    expect(human.stdout).toBe(formatVoters(VOTERS))
    const lines = human.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^\s+NAME\s+ID\s+ROLE\s+MATCH\s+HEALTH$/)
    expect(lines[1]).toMatch(/^\*\s+beta\s+12D3KooWBBBB…BBBBBB\s+voter\s+17\s+suspect$/)
    expect(lines[2]).toMatch(/^\s+alpha\s+\S+\s+voter\s+16\s+alive\s+\(this peer\)$/)
    expect(lines[3]).toMatch(/^\s+\?\s+\S+\s+learner\s+-\s+unknown$/)
    const json = await run(['voters', '--json', '--data-dir', dir])
    expect(JSON.parse(json.stdout)).toEqual(VOTERS)
  })

  it('voters remove NAME goes to the agent; errors are one line', async () => {
    useDataDir()
    const r = await run(['voters', 'remove', 'beta', '--data-dir', dir])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^beta \(12D3KooWBBBB…BBBBBB\) removed through the log\n$/)
    const forced = await run(['voters', 'remove', 'beta', '--force', '--json', '--data-dir', dir])
    expect(JSON.parse(forced.stdout)).toMatchObject({ removed: true, forced: true })
    expect(removals).toEqual(['beta', 'beta --force'])
    const bad = await run(['voters', 'remove', 'nobody', '--data-dir', dir])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toBe('skein: no voter or learner is named nobody (`skein voters` lists them)\n')
    const missing = await run(['voters', 'remove', '--data-dir', dir])
    expect(missing.code).toBe(2)
  })

  it('leave asks the agent to leave and waits for it to stop', async () => {
    useDataDir()
    const r = await run(['leave', '--data-dir', dir])
    expect(r.code).toBe(0)
    expect(leaves).toBe(1)
    expect(r.stdout).toMatch(/^alpha \(12D3KooWAAAA…AAAAAA\) left the cluster; the agent has stopped\n$/)
  })
})

describe('client commands without an agent', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'skein-cli-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('nothing listening: the documented one-line error', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const a = s.address()
        s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0))
      })
    })
    const r = await run(['status', '--api', `127.0.0.1:${port}`], { SKEIN_TOKEN: 'x' })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(`skein: no skein agent answers at 127.0.0.1:${port} (start one with \`skein agent\`, or pass --data-dir/--api)\n`)
  })

  it('a bad --api value is a usage error', async () => {
    const r = await run(['nodes', '--api', 'nope'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^skein: --api: 'nope' is not a valid HOST:PORT/)
    oneLine(r.stderr)
  })

  it('token prints the data dir’s join token, or says there is no cluster', async () => {
    const key = randomBytes(32)
    const none = await run(['token', '--data-dir', dir])
    expect(none.code).toBe(1)
    expect(none.stderr).toBe(`skein: no cluster in data dir ${dir} (start one with \`skein agent\`, or pass --data-dir)\n`)
    writeFileSync(join(dir, 'cluster.key'), `${key.toString('hex')}\n`, { mode: 0o600 })
    const r = await run(['token', '--data-dir', dir])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`${encodeJoinToken(new Uint8Array(key))}\n`)
  })
})

describe('drain: replicas that cannot leave', () => {
  const svc = (name: string, explain: string | null) => ({ name, explain }) as never
  it('says why when the leader explains every service left as unable to move off the host', () => {
    const left = [{ service: 'web' }, { service: 'web' }, { service: 'db' }]
    const services = [svc('web', '2 of 2 replicas cannot move off h1: host drained on h1'), svc('db', '1 of 1 replicas cannot move off h1, h2: port 5432 taken on h3; host drained on h1, h2')]
    expect(drainStuck('h1', left, services)).toBe('db: 1 of 1 replicas cannot move off h1, h2: port 5432 taken on h3; host drained on h1, h2; web: 2 of 2 replicas cannot move off h1: host drained on h1')
  })
  it('stays quiet while any of them may still move, or for another host', () => {
    expect(drainStuck('h1', [{ service: 'web' }, { service: 'db' }], [svc('web', '2 of 2 replicas cannot move off h1: host drained on h1'), svc('db', null)])).toBeNull()
    expect(drainStuck('h1', [{ service: 'web' }], [svc('web', '2 of 2 replicas cannot move off h10: host drained on h10')])).toBeNull()
    expect(drainStuck('h1', [], [])).toBeNull()
  })
})

describe('logs and events lines', () => {
  it('prefixes a line with its replica, a note with its service, and an event with its host', () => {
    const base = { service: 'web', slot: 3, host: 'h2', stream: 'stdout' as const, time: '2025-01-01T00:00:00.000Z' }
    expect(formatLogItem({ ...base, kind: 'line', text: 'GET / 200' })).toBe('web.3 | GET / 200\n')
    expect(formatLogItem({ ...base, slot: -1, kind: 'note', stream: null, time: null, text: 'no logs of web.3 from h2: h2 did not answer within 10000 ms' }))
      .toBe('web | (no logs of web.3 from h2: h2 did not answer within 10000 ms)\n')
    const e = { time: '2025-01-01T00:00:00.000Z', kind: 'no-answer', host: 'h3', hostId: 'p3', service: null, slot: null, generation: null, containerId: null, reason: 'its agent events are missing' }
    expect(formatEvent(e)).toBe('2025-01-01T00:00:00.000Z no-answer   h3 (its agent events are missing)\n')
  })
})
