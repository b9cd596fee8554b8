/**
 * The cluster test bed: several hosts on this machine, each a network namespace with its own
 * address, its own Docker engine and its own skein peer (docs/testbed.md). Needs root.
 *
 *   const bed = await up(3)          // bridge, namespaces, one dockerd each, image, peers
 *   await bed.killHost(1)            // everything in the namespace at once, link down
 *   await bed.partition([[0], [1, 2]]); await bed.heal()
 *   await bed.restartHost(1)
 *   await bed.down()                 // always: processes, mounts, namespaces, links, rules, dirs
 *
 * `up(n, { skein: false })` brings up the hosts, their engines and the image only (no peers), for
 * running another orchestrator on the same bed: `bed.docker(h, args)`, `bed.swarmInit()`,
 * `bed.swarmLeader()` (bench/compare.ts runs Docker Swarm this way).
 *
 * Every name carries a random run id, so a run never touches another run's hosts. Everything
 * this file starts is killed by pid; every wait is bounded.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { waitFor } from '../integration/harness/agents.ts'

const REPO = resolve(import.meta.dirname, '../..')
const PEER_PORT = 7946
const API = '127.0.0.1:7947'

/** How the peer binary is run: `[file, ...args]`. */
export type SkeinCommand = readonly string[]

/** One host of the test bed. */
export interface Host {
  readonly index: number
  /** Node name, `h1`, `h2`, … */
  readonly name: string
  readonly ns: string
  /** The host's address on the test bed's bridge. */
  readonly addr: string
  /** The engine's socket, as DOCKER_HOST. */
  readonly dockerHost: string
  readonly dir: string
  /** The root-side end of the host's veth pair. */
  readonly veth: string
  /** The peer's output (stdout and stderr) since up(), across restarts. */
  output: string
  peer: ChildProcess | undefined
  dockerd: ChildProcess | undefined
}

/** A replica as `skein ps --json` prints it (the fields the scenarios use). */
export interface PsRow {
  service: string
  slot: number
  host: string | null
  state: string
  containerId: string | null
}

function sh(cmd: string, args: string[], opts: { ns?: string; input?: Buffer; allowFail?: boolean; env?: Record<string, string>; timeoutMs?: number } = {}): string {
  const [file, argv] = opts.ns === undefined ? [cmd, args] : ['nsenter', [`--net=/run/netns/${opts.ns}`, cmd, ...args]]
  try {
    return execFileSync(file, argv, { encoding: 'utf8', input: opts.input, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, stdio: ['pipe', 'pipe', 'pipe'] }).trim()
  } catch (err) {
    if (opts.allowFail) return ''
    const e = err as { stderr?: string; message: string }
    throw new Error(`${file} ${argv.join(' ')} failed: ${e.stderr?.trim() || e.message}`)
  }
}

/** Poll `fn` until it returns a value other than undefined/false, or throw naming `what`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, everyMs = 250): Promise<T> {
  // waitFor's loop; only undefined and false mean "not yet" here (a 0 or '' is an answer).
  const got = await waitFor(what, async () => {
    const v = await fn()
    return v === undefined || v === false ? undefined : { v }
  }, timeoutMs, everyMs)
  return got.v
}

let built: Promise<string> | undefined
let builtDir: string | undefined

/**
 * The peer command: SKEIN_CLUSTER_BIN when set (e.g. an existing dist/skein), else the single
 * executable built once per test process from the working tree (`scripts/build.ts --bin`) into a
 * temporary directory. `releaseSkeinCommand()` removes it (call it in `afterAll`: a test worker
 * may be ended without an exit event); the process's exit removes it too.
 */
export async function skeinCommand(): Promise<SkeinCommand> {
  const given = process.env.SKEIN_CLUSTER_BIN
  if (given !== undefined && given !== '') return [resolve(given)]
  built ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skein-testbed-bin-'))
    builtDir = dir
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
    const out = join(dir, 'skein')
    execFileSync(process.execPath, [join(REPO, 'scripts/build.ts'), '--bin'], { env: { ...process.env, SKEIN_BUILD_BIN: out }, stdio: 'ignore', timeout: 300_000 })
    return out
  })()
  return [await built]
}

/** Remove the executable skeinCommand() built (the next call builds it again). */
export async function releaseSkeinCommand(): Promise<void> {
  const dir = builtDir
  built = undefined
  builtDir = undefined
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
}

export interface UpOptions {
  /** The image every engine gets (from the root engine). */
  image?: string
  /** Extra flags for every peer's `skein agent`. */
  agentArgs?: string[]
  /** false: no skein peers, only namespaces, engines and the image (default true). */
  skein?: boolean
}

/** The test bed. */
export class TestBed {
  readonly id: string
  readonly hosts: Host[] = []
  readonly bridge: string
  readonly subnet: number
  readonly root: string
  #skein: SkeinCommand = []
  #agentArgs: string[] = []
  #token = ''
  #forwardRule = false
  #partitioned = false
  #down = false

  constructor() {
    this.id = randomBytes(2).toString('hex')
    this.bridge = `skb${this.id}`
    this.subnet = 100 + (parseInt(this.id, 16) % 150)
    this.root = `/var/lib/skein-testbed/${this.id}`
  }

  get bridgeAddr(): string {
    return `10.77.${this.subnet}.1`
  }

  host(i: number): Host {
    const h = this.hosts[i]
    if (h === undefined) throw new Error(`no host ${i} (the test bed has ${this.hosts.length})`)
    return h
  }

  /** Bring up `n` hosts and a cluster of skein peers on them (h1 bootstraps, the others join it). */
  async up(n: number, opts: UpOptions = {}): Promise<void> {
    await mkdir(this.root, { recursive: true })
    const withSkein = opts.skein !== false
    if (withSkein) this.#skein = await skeinCommand()
    this.#agentArgs = opts.agentArgs ?? []
    sh('ip', ['link', 'add', this.bridge, 'type', 'bridge'])
    sh('ip', ['addr', 'add', `${this.bridgeAddr}/24`, 'dev', this.bridge])
    sh('ip', ['link', 'set', this.bridge, 'up'])
    // A root-namespace dockerd sets FORWARD to DROP with bridge netfilter on: let the bed talk.
    sh('iptables', ['-I', 'FORWARD', '-i', this.bridge, '-o', this.bridge, '-j', 'ACCEPT'])
    this.#forwardRule = true
    for (let i = 0; i < n; i++) {
      const name = `h${i + 1}`
      const ns = `sk${this.id}${name}`
      const h: Host = {
        index: i, name, ns, addr: `10.77.${this.subnet}.${11 + i}`, dockerHost: `unix:///run/${ns}.sock`,
        dir: join(this.root, name), veth: `skv${this.id}${i + 1}`, output: '', peer: undefined, dockerd: undefined,
      }
      this.hosts.push(h)
      await mkdir(join(h.dir, 'skein'), { recursive: true })
      sh('ip', ['netns', 'add', ns])
      sh('ip', ['link', 'add', h.veth, 'type', 'veth', 'peer', 'name', `skp${this.id}${i + 1}`])
      sh('ip', ['link', 'set', `skp${this.id}${i + 1}`, 'netns', ns])
      sh('ip', ['link', 'set', `skp${this.id}${i + 1}`, 'name', 'eth0'], { ns })
      sh('ip', ['addr', 'add', `${h.addr}/24`, 'dev', 'eth0'], { ns })
      sh('ip', ['link', 'set', 'eth0', 'up'], { ns })
      sh('ip', ['link', 'set', 'lo', 'up'], { ns })
      sh('ip', ['link', 'set', h.veth, 'master', this.bridge])
      sh('ip', ['link', 'set', h.veth, 'up'])
      // The partition chain, first in INPUT and OUTPUT; heal() flushes it.
      sh('iptables', ['-N', 'SKPART'], { ns })
      sh('iptables', ['-I', 'INPUT', '-j', 'SKPART'], { ns })
      sh('iptables', ['-I', 'OUTPUT', '-j', 'SKPART'], { ns })
    }
    await Promise.all(this.hosts.map((h) => this.#startEngine(h)))
    const image = opts.image ?? 'local/busybox:1'
    const saved = execFileSync('docker', ['save', image], { maxBuffer: 256 * 1024 * 1024, timeout: 60_000 })
    for (const h of this.hosts) sh('docker', ['load', '-q'], { env: { DOCKER_HOST: h.dockerHost }, input: saved })
    if (!withSkein) return
    const first = this.host(0)
    this.#startPeer(first, [])
    await until('h1 to lead its new cluster', () => this.cli(first, ['status', '--json']).then((s) => (JSON.parse(s) as { role?: string }).role === 'leader'), 30_000)
    this.#token = await this.cli(first, ['token'])
    for (const h of this.hosts.slice(1)) this.#startPeer(h, ['--join', `${first.addr}:${PEER_PORT}`, '--token', this.#token])
    await until(`${n} peers alive on h1`, async () => (await this.nodes(first)).filter((m) => m.state === 'alive').length === n, 30_000)
  }

  async #startEngine(h: Host): Promise<void> {
    const d = spawn('nsenter', [
      `--net=/run/netns/${h.ns}`, 'dockerd', '--data-root', join(h.dir, 'docker'), '--exec-root', `/run/${h.ns}`,
      '-H', h.dockerHost, '--pidfile', `/run/${h.ns}.pid`, '--bip', `172.${40 + h.index}.0.1/24`,
    ], { stdio: ['ignore', 'ignore', 'ignore'] })
    h.dockerd = d
    d.on('exit', () => {
      if (h.dockerd === d) h.dockerd = undefined
    })
    await until(`the engine of ${h.name}`, () => sh('docker', ['version', '--format', '{{.Server.Version}}'], { env: { DOCKER_HOST: h.dockerHost }, allowFail: true, timeoutMs: 5000 }) !== '' || undefined, 60_000, 300)
  }

  #startPeer(h: Host, extra: string[]): void {
    const [file, ...pre] = this.#skein
    if (file === undefined) throw new Error('up() first')
    const p = spawn('nsenter', [
      `--net=/run/netns/${h.ns}`, file, ...pre, 'agent', '--data-dir', join(h.dir, 'skein'), '--name', h.name,
      '--listen', `${h.addr}:${PEER_PORT}`, '--api', API, ...this.#agentArgs, ...extra,
    ], { env: { ...process.env, DOCKER_HOST: h.dockerHost, NO_COLOR: '1', SKEIN_DATA_DIR: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
    p.stdout?.on('data', (b: Buffer) => (h.output += b.toString()))
    p.stderr?.on('data', (b: Buffer) => (h.output += b.toString()))
    p.on('exit', () => {
      if (h.peer === p) h.peer = undefined
    })
    h.peer = p
  }

  /** Run `skein ARGS --data-dir <host's>` inside the host's namespace; stdout, or throws with stderr. */
  async cli(h: Host, args: string[], timeoutMs = 15_000): Promise<string> {
    const [file, ...pre] = this.#skein
    if (file === undefined) throw new Error('up() first')
    return await new Promise((ok, fail) => {
      const p = spawn('nsenter', [`--net=/run/netns/${h.ns}`, file, ...pre, ...args, '--data-dir', join(h.dir, 'skein')], {
        env: { ...process.env, NO_COLOR: '1', SKEIN_DATA_DIR: '' }, stdio: ['ignore', 'pipe', 'pipe'],
      })
      let out = ''
      let err = ''
      p.stdout.on('data', (b: Buffer) => (out += b.toString()))
      p.stderr.on('data', (b: Buffer) => (err += b.toString()))
      const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
      p.on('exit', (code) => {
        clearTimeout(timer)
        if (code === 0) ok(out.trim())
        else fail(new Error(`skein ${args.join(' ')} on ${h.name} exited ${code}: ${err.trim()}`))
      })
    })
  }

  async nodes(h: Host): Promise<{ name: string; state: string }[]> {
    return JSON.parse(await this.cli(h, ['nodes', '--json'])) as { name: string; state: string }[]
  }

  async ps(h: Host, service?: string): Promise<PsRow[]> {
    return JSON.parse(await this.cli(h, ['ps', ...(service === undefined ? [] : [service]), '--json'])) as PsRow[]
  }

  /** `skein status --json` of a host. */
  async status(h: Host): Promise<Record<string, unknown>> {
    return JSON.parse(await this.cli(h, ['status', '--json'])) as Record<string, unknown>
  }

  /** The leader's host as every host but `except` reports it, once they agree (on one other than `not`). */
  async leader(opts: { except?: readonly number[]; not?: Host; timeoutMs?: number } = {}): Promise<Host> {
    const asking = this.hosts.filter((h) => !(opts.except ?? []).includes(h.index))
    const name = await until('an agreed leader', async () => {
      const seen = await Promise.all(asking.map(async (h) => (await this.status(h))['leader']))
      const first = seen[0]
      return typeof first === 'string' && first !== opts.not?.name && seen.every((s) => s === first) ? first : undefined
    }, opts.timeoutMs ?? 30_000, 200)
    const h = this.hosts.find((x) => x.name === name)
    if (h === undefined) throw new Error(`the leader ${name} is no host of the bed`)
    return h
  }

  /** `skein apply -f -`-style: write the stack to the host's dir and apply it there. */
  async apply(h: Host, yaml: string): Promise<void> {
    const file = join(h.dir, `stack-${Date.now()}.yaml`)
    await writeFile(file, yaml)
    await this.cli(h, ['apply', '-f', file], 30_000)
  }

  /** Ids of the running containers of a host's engine carrying these labels. */
  containers(h: Host, ...labels: string[]): string[] {
    if (h.dockerd === undefined) return []
    return sh('docker', ['ps', '-q', '--filter', 'status=running', ...labels.flatMap((l) => ['--filter', `label=${l}`])], { env: { DOCKER_HOST: h.dockerHost }, allowFail: true, timeoutMs: 10_000 })
      .split('\n').filter((s) => s !== '')
  }

  /** One label of a container on a host's engine ('' when it cannot be read). */
  inspectLabel(h: Host, id: string, label: string): string {
    return sh('docker', ['inspect', '-f', `{{index .Config.Labels "${label}"}}`, id], { env: { DOCKER_HOST: h.dockerHost }, allowFail: true, timeoutMs: 10_000 })
  }

  /** Run `docker ARGS` against a host's engine; stdout, or throws with stderr. */
  docker(h: Host, args: string[], timeoutMs = 60_000): string {
    return sh('docker', args, { env: { DOCKER_HOST: h.dockerHost }, timeoutMs })
  }

  /** Docker Swarm on the bed: h1 inits it (advertising its bed address), every other host joins as a manager. */
  async swarmInit(timeoutMs = 60_000): Promise<void> {
    const first = this.host(0)
    this.docker(first, ['swarm', 'init', '--advertise-addr', first.addr])
    const token = this.docker(first, ['swarm', 'join-token', '-q', 'manager'])
    for (const h of this.hosts.slice(1)) this.docker(h, ['swarm', 'join', '--token', token, `${first.addr}:2377`])
    await until(`${this.hosts.length} swarm managers ready and reachable`, () => {
      const rows = sh('docker', ['node', 'ls', '--format', '{{.Status}} {{.ManagerStatus}}'], { env: { DOCKER_HOST: first.dockerHost }, allowFail: true, timeoutMs: 10_000 }).split('\n')
      return rows.filter((r) => /^Ready (Leader|Reachable)$/.test(r)).length === this.hosts.length || undefined
    }, timeoutMs, 250)
  }

  /** The host whose engine is the Swarm leader (asked of each live engine: `docker node inspect self`). */
  async swarmLeader(timeoutMs = 30_000): Promise<Host> {
    return await until('a swarm leader', () => this.hosts.find((h) => h.dockerd !== undefined &&
      sh('docker', ['node', 'inspect', 'self', '--format', '{{.ManagerStatus.Leader}}'], { env: { DOCKER_HOST: h.dockerHost }, allowFail: true, timeoutMs: 10_000 }) === 'true'), timeoutMs, 250)
  }

  /** Container pids of a host's engine (containers live in namespaces of their own). */
  #containerPids(h: Host): number[] {
    const ids = this.containers(h)
    if (ids.length === 0) return []
    return sh('docker', ['inspect', '-f', '{{.State.Pid}}', ...ids], { env: { DOCKER_HOST: h.dockerHost }, allowFail: true, timeoutMs: 10_000 })
      .split('\n').map(Number).filter((p) => p > 0)
  }

  async #killAll(h: Host): Promise<void> {
    const pids = new Set(this.#containerPids(h))
    for (const p of sh('ip', ['netns', 'pids', h.ns], { allowFail: true }).split('\n')) if (p !== '') pids.add(Number(p))
    for (const p of [h.peer?.pid, h.dockerd?.pid]) if (p !== undefined) pids.add(p)
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    await until(`the processes of ${h.name} to die`, () => [...pids].every((p) => !alive(p)) || undefined, 15_000, 100)
    h.peer = undefined
    h.dockerd = undefined
  }

  /** Lose a host: every process in it at once (peer, engine, shims, containers), then its link. */
  async killHost(i: number): Promise<void> {
    const h = this.host(i)
    await this.#killAll(h)
    sh('ip', ['link', 'set', h.veth, 'down'])
  }

  /** Kill only the host's peer (kill -9); its engine and containers keep running. */
  async killPeer(i: number): Promise<void> {
    const h = this.host(i)
    const p = h.peer
    if (p?.pid === undefined) return
    process.kill(p.pid, 'SIGKILL')
    await until(`the peer of ${h.name} to die`, () => !alive(p.pid as number) || undefined, 10_000, 50)
  }

  /** Start the host's peer again (its data dir remembers the cluster). */
  startPeer(i: number): void {
    this.#startPeer(this.host(i), [])
  }

  /** Bring a lost host back: link up, a fresh engine on its old data, its peer. */
  async restartHost(i: number, opts: { linkUp?: boolean } = {}): Promise<void> {
    const h = this.host(i)
    await this.#killAll(h)
    if (opts.linkUp !== false) sh('ip', ['link', 'set', h.veth, 'up'])
    await this.#startEngine(h)
    this.#startPeer(h, [])
  }

  /** Set a host's link up or down (the processes keep running). */
  link(i: number, up: boolean): void {
    sh('ip', ['link', 'set', this.host(i).veth, up ? 'up' : 'down'])
  }

  /** Cut the bed into groups: hosts in different groups drop each other's packets. */
  partition(groups: readonly (readonly number[])[]): void {
    this.heal()
    for (const g of groups) {
      for (const i of g) {
        const h = this.host(i)
        for (const other of this.hosts) {
          if (g.includes(other.index)) continue
          sh('iptables', ['-A', 'SKPART', '-s', other.addr, '-j', 'DROP'], { ns: h.ns })
          sh('iptables', ['-A', 'SKPART', '-d', other.addr, '-j', 'DROP'], { ns: h.ns })
        }
      }
    }
    this.#partitioned = true
  }

  /** Undo partition(). */
  heal(): void {
    if (!this.#partitioned) return
    for (const h of this.hosts) sh('iptables', ['-F', 'SKPART'], { ns: h.ns, allowFail: true })
    this.#partitioned = false
  }

  /** Tear everything down; safe to call twice and after a failed up(). */
  async down(): Promise<void> {
    if (this.#down) return
    this.#down = true
    for (const h of this.hosts) {
      try {
        await this.#killAll(h)
      } catch {
        // keep tearing down
      }
    }
    const mounts = sh('findmnt', ['-rn', '-o', 'TARGET'], { allowFail: true }).split('\n')
      .filter((m) => m.startsWith(this.root) || this.hosts.some((h) => m.startsWith(`/run/${h.ns}`)))
      .sort((a, b) => b.length - a.length)
    for (const m of mounts) sh('umount', ['-l', m], { allowFail: true })
    for (const h of this.hosts) {
      sh('ip', ['link', 'del', h.veth], { allowFail: true })
      sh('ip', ['netns', 'del', h.ns], { allowFail: true })
      await rm(`/run/${h.ns}`, { recursive: true, force: true })
      await rm(`/run/${h.ns}.sock`, { force: true })
      await rm(`/run/${h.ns}.pid`, { force: true })
    }
    if (this.#forwardRule) sh('iptables', ['-D', 'FORWARD', '-i', this.bridge, '-o', this.bridge, '-j', 'ACCEPT'], { allowFail: true })
    sh('ip', ['link', 'del', this.bridge], { allowFail: true })
    await rm(this.root, { recursive: true, force: true })
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Create and bring up a test bed; on a failure during up(), tear down what was made. */
export async function up(n: number, opts: UpOptions = {}): Promise<TestBed> {
  if (process.getuid?.() !== 0) throw new Error('the cluster test bed needs root (network namespaces, a dockerd per host): run the tests as root, as CI does')
  const bed = new TestBed()
  try {
    await bed.up(n, opts)
  } catch (err) {
    await bed.down()
    throw err
  }
  return bed
}

/** Running containers of a service on each live host's engine, by host name. */
export function placement(bed: TestBed, service: string, hosts: readonly Host[] = bed.hosts): Record<string, number> {
  const out: Record<string, number> = {}
  for (const h of hosts) {
    const n = bed.containers(h, `io.skein.service=${service}`).length
    if (n > 0) out[h.name] = n
  }
  return out
}

export const total = (p: Record<string, number>): number => Object.values(p).reduce((a, b) => a + b, 0)

/** Wait until `ps` on `h` shows `n` running replicas of `service`, one per slot, none on `not`. */
export async function converged(bed: TestBed, h: Host, service: string, n: number, not: readonly string[] = [], timeoutMs = 30_000): Promise<void> {
  await until(`${n} ${service} replicas running${not.length > 0 ? ` off ${not.join(', ')}` : ''} (ps on ${h.name})`, async () => {
    const rows = (await bed.ps(h, service)).filter((r) => r.state === 'running')
    const slots = new Set(rows.map((r) => r.slot))
    return rows.length === n && slots.size === n && rows.every((r) => r.host !== null && !not.includes(r.host))
  }, timeoutMs, 250)
}

/**
 * A one-service stack of `local/busybox:1` that sleeps and ends at once on SIGTERM, restarted
 * 200 ms after an exit; `extra` is more YAML lines under the service (indented 4).
 */
export const sleeperStack = (name: string, service: string, replicas: number, extra = ''): string =>
  `stack: ${name}\nservices:\n  ${service}:\n    image: local/busybox:1\n    command: [sh, -c, "trap 'exit 0' TERM; sleep 3600 & wait"]\n    replicas: ${replicas}\n    restart: { condition: any, delay: 200ms }\n${extra}`
