import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

/**
 * Test harness: real `skein agent` processes on 127.0.0.1, each with its own data dir and ports.
 * Every process it starts is tracked and killed by `stopAll()`.
 */
export const REPO = resolve(import.meta.dirname, '../../..')
/** The entry point the harness runs: the TypeScript sources, a bundle (SKEIN_ENTRY=dist/skein.mjs) or the single executable (SKEIN_ENTRY=dist/skein). */
export const SKEIN = resolve(REPO, process.env.SKEIN_ENTRY ?? 'node/skein.ts')

/** The single executable runs by itself; a script runs on this Node. */
const IS_BINARY = !/\.(ts|mjs|js)$/.test(SKEIN)

/** The Node flags the entry's shebang asks for (`#!/usr/bin/env -S node --flag …`), so tests run it as a user would (none for the binary: they are built in). */
export const NODE_FLAGS: string[] = IS_BINARY ? [] : (readFileSync(SKEIN, 'utf8').split('\n', 1)[0] ?? '').split(/\s+/).filter((w) => w.startsWith('--'))

/** The command and leading arguments that run skein. */
export const SKEIN_COMMAND: readonly [string, ...string[]] = IS_BINARY ? [SKEIN] : [process.execPath, ...NODE_FLAGS, SKEIN]

export interface NodeView {
  id: string
  name: string
  address: string
  state: 'alive' | 'suspect' | 'dead' | 'left'
  labels: Record<string, string>
  incarnation: number
  self: boolean
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return await new Promise((ok, fail) => {
    const srv = createServer()
    srv.once('error', fail)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close(() => ok(port))
    })
  })
}

export async function tempDir(prefix = 'skein-test-'): Promise<string> {
  return await mkdtemp(join(tmpdir(), prefix))
}

export interface AgentOptions {
  name: string
  dir?: string
  join?: string[]
  token?: string
  labels?: string[]
  extraArgs?: string[]
  listenPort?: number
  apiPort?: number
  /** Extra environment of the agent process. Without DOCKER_HOST here, agents get a dead engine address (NO_DOCKER), so tests that do not run containers never touch the real engine. */
  env?: Record<string, string>
}

/** The DOCKER_HOST of agents whose test does not run containers: nothing answers there. */
export const NO_DOCKER = 'unix:///nonexistent/skein-test-no-docker.sock'

export class Agent {
  readonly name: string
  readonly dir: string
  readonly listenPort: number
  readonly apiPort: number
  proc: ChildProcess | undefined
  output = ''
  exitCode: number | null = null
  /** Extra environment (kept across restarts). */
  env: Record<string, string> = { DOCKER_HOST: NO_DOCKER }

  constructor(name: string, dir: string, listenPort: number, apiPort: number) {
    this.name = name
    this.dir = dir
    this.listenPort = listenPort
    this.apiPort = apiPort
  }

  get address(): string {
    return `127.0.0.1:${this.listenPort}`
  }

  /** Start (or restart) the process. With `args` undefined, restarts with only the data dir. */
  start(args: string[]): void {
    this.exitCode = null
    const proc = spawn(SKEIN_COMMAND[0], [...SKEIN_COMMAND.slice(1), 'agent', '--data-dir', this.dir, ...args], {
      cwd: REPO,
      env: { ...process.env, SKEIN_DATA_DIR: '', NO_COLOR: '1', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    proc.stdout?.on('data', (b: Buffer) => (this.output += b.toString()))
    proc.stderr?.on('data', (b: Buffer) => (this.output += b.toString()))
    proc.on('exit', (code, signal) => {
      this.exitCode = code ?? (signal ? 128 : -1)
      if (this.proc === proc) this.proc = undefined
    })
    this.proc = proc
    running.add(this)
  }

  get running(): boolean {
    return this.proc !== undefined
  }

  /** SIGKILL: the process dies without a word, as a crashed host would. */
  async kill9(): Promise<void> {
    await this.#signal('SIGKILL')
  }

  async stop(): Promise<void> {
    await this.#signal('SIGTERM')
  }

  async #signal(sig: NodeJS.Signals): Promise<void> {
    const p = this.proc
    if (!p) return
    const exited = new Promise<void>((ok) => p.once('exit', () => ok()))
    p.kill(sig)
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }

  async apiToken(): Promise<string> {
    return (await readFile(join(this.dir, 'api.token'), 'utf8')).trim()
  }

  async get<T>(path: string): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${this.apiPort}${path}`, {
      headers: { authorization: `Bearer ${await this.apiToken()}` },
      signal: AbortSignal.timeout(3000),
    })
    if (!res.ok) throw new Error(`${this.name} ${path}: HTTP ${res.status}`)
    return (await res.json()) as T
  }

  async nodes(): Promise<NodeView[]> {
    return await this.get<NodeView[]>('/v1/nodes')
  }

  async status(): Promise<Record<string, unknown>> {
    return await this.get<Record<string, unknown>>('/v1/status')
  }

  /** The peer id this agent reports for itself. */
  async id(): Promise<string> {
    const self = (await this.nodes()).find((n) => n.self)
    if (!self) throw new Error(`${this.name} lists no self`)
    return self.id
  }
}

const running = new Set<Agent>()

/** Create an agent with fresh ports (and a fresh data dir unless given) and start it. */
export async function startAgent(opts: AgentOptions): Promise<Agent> {
  const dir = opts.dir ?? (await tempDir(`skein-${opts.name}-`))
  const agent = new Agent(opts.name, dir, opts.listenPort ?? (await freePort()), opts.apiPort ?? (await freePort()))
  agent.env = { DOCKER_HOST: NO_DOCKER, ...opts.env }
  agent.start(agentArgs(agent, opts))
  return agent
}

export function agentArgs(agent: Agent, opts: AgentOptions): string[] {
  const args = ['--name', agent.name, '--listen', `127.0.0.1:${agent.listenPort}`, '--api', `127.0.0.1:${agent.apiPort}`, '--log-level', 'debug']
  for (const j of opts.join ?? []) args.push('--join', j)
  if (opts.token !== undefined) args.push('--token', opts.token)
  for (const l of opts.labels ?? []) args.push('--label', l)
  args.push(...(opts.extraArgs ?? []))
  return args
}

/** Poll `fn` until it returns a truthy value or the deadline passes (then throw with `what`). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastErr: unknown
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      lastErr = err
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${String(lastErr)})` : ''}`)
}

/** Run the CLI once and collect its output. */
export async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return await new Promise((ok) => {
    const proc = spawn(SKEIN_COMMAND[0], [...SKEIN_COMMAND.slice(1), ...args], { cwd: REPO, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
    proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000)
    proc.on('exit', (code) => {
      clearTimeout(timer)
      ok({ code: code ?? -1, stdout, stderr })
    })
  })
}

/** Run `skein ARGS --json` (at `a`'s data dir when given) and parse its output; throws with stderr when it fails. */
export async function cliJson<T>(args: string[], a?: Agent): Promise<T> {
  const r = await cli([...args, '--json', ...(a === undefined ? [] : ['--data-dir', a.dir])])
  if (r.code !== 0) throw new Error(`skein ${args.join(' ')} failed (${r.code}): ${r.stderr}`)
  return JSON.parse(r.stdout) as T
}

/** Kill every agent this harness started and remove their data dirs. */
export async function stopAll(opts: { keepDirs?: boolean } = {}): Promise<void> {
  const agents = [...running]
  running.clear()
  await Promise.all(agents.map((a) => a.kill9()))
  if (!opts.keepDirs) await Promise.all(agents.map((a) => rm(a.dir, { recursive: true, force: true })))
}

/** `skein apply -f` a stack file with this YAML text at the agent (throws with its stderr when it fails). */
export async function applyStack(a: Agent, yaml: string): Promise<void> {
  const dir = await tempDir('skein-stack-')
  try {
    const file = join(dir, 'stack.yaml')
    await writeFile(file, yaml)
    const r = await cli(['apply', '-f', file, '--data-dir', a.dir])
    if (r.code !== 0) throw new Error(`skein apply failed: ${r.stderr}`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
