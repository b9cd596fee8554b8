/**
 * `npm run bench:compare`: Docker Swarm and Skein, side by side, in one run on the same test bed
 * (test/cluster/harness.ts: 3 hosts, each a network namespace with its own address and its own
 * Docker engine; Skein runs the single executable built from the working tree).
 *
 * Both get the same image (local/busybox:1), the same command (a `sleep` that exits on TERM), the
 * same replica count and their own defaults otherwise (both restart after 5 s by default). Swarm
 * has a manager on every host (h1 inits, h2 and h3 join as managers); Skein has a peer on every
 * host (h1 bootstraps, the others join). Steps, RUNS runs each (default 5):
 *
 * - deploy 6 / deploy 30: from the command (`docker service create -d` on h1, or `skein apply` on
 *   h1) until N containers of the service run across the engines; then the service is removed
 *   and every container gone before the next run (one bed per system for all deploy runs).
 * - lose a host that is not the leader / lose the leader's host: on a fresh bed, 6 replicas
 *   running 2 per host; from the moment the host is killed (every process in its namespace, then
 *   its link) until 6 run again on the engines of the others.
 *
 * Both sides are measured the same way: every POLL_MS each live engine is asked, over its socket,
 * for its running containers with the service's label (com.docker.swarm.service.name=bench or
 * io.skein.service=bench); a dead host's engine counts 0. Every wait is bounded; a run that times
 * out is counted as failed and shown in the table. Loss runs alternate between the systems so
 * that a noisy stretch of the shared machine does not land on one side only. The table goes to
 * stdout and bench/results/compare.md. Needs root. Not a test.
 */
import { execFileSync } from 'node:child_process'
import { statSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { releaseSkeinCommand, skeinCommand, up, until, type Host, type TestBed } from '../test/cluster/harness.ts'
import { fmtMs, percentile, printTable } from './stats.ts'

const RUNS = Math.max(1, Number(process.env.RUNS ?? 5))
const HOSTS = 3
const POLL_MS = 100
const DEPLOY_TIMEOUT_MS = 120_000
const LOSS_TIMEOUT_MS = 120_000
const GONE_TIMEOUT_MS = 60_000
const IMAGE = 'local/busybox:1'
const SERVICE = 'bench'
const COMMAND = ['sh', '-c', "trap 'exit 0' TERM; sleep 3600 & wait"]
const COMMAND_TEXT = `sh -c "${COMMAND[2]}"`
const OUT = resolve(import.meta.dirname, 'results/compare.md')

type StepName = 'deploy 6' | 'deploy 30' | 'lose a non-leader host' | "lose the leader's host"
const STEPS: readonly { name: StepName; what: string }[] = [
  { name: 'deploy 6', what: 'deploy 6 replicas, until 6 run' },
  { name: 'deploy 30', what: 'deploy 30 replicas, until 30 run' },
  { name: 'lose a non-leader host', what: 'lose a host that is not the leader (6 replicas), until 6 run again' },
  { name: "lose the leader's host", what: "lose the leader's host (6 replicas), until 6 run again" },
]

/** One orchestrator as the bench drives it. */
interface System {
  readonly name: 'Swarm' | 'Skein'
  /** The label its containers carry for the service. */
  readonly label: string
  up(): Promise<TestBed>
  /** Issue the deploy of `n` replicas on h1 (returns once the command has). */
  deploy(bed: TestBed, n: number): Promise<void>
  remove(bed: TestBed): Promise<void>
  leader(bed: TestBed): Promise<Host>
  /** The processes of a host that make up engine + orchestrator, for their memory. */
  pids(h: Host): { engine?: number; orchestrator?: number }
}

const swarm: System = {
  name: 'Swarm',
  label: `com.docker.swarm.service.name=${SERVICE}`,
  async up() {
    const bed = await track(up(HOSTS, { skein: false }))
    await bed.swarmInit()
    return bed
  },
  async deploy(bed, n) {
    bed.docker(bed.host(0), ['service', 'create', '-d', '--name', SERVICE, '--replicas', String(n), '--no-resolve-image', IMAGE, ...COMMAND])
  },
  async remove(bed) {
    bed.docker(bed.host(0), ['service', 'rm', SERVICE])
  },
  leader: (bed) => bed.swarmLeader(),
  pids: (h) => ({ engine: h.dockerd?.pid }),
}

const skein: System = {
  name: 'Skein',
  label: `io.skein.service=${SERVICE}`,
  up: () => track(up(HOSTS)),
  async deploy(bed, n) {
    const command = `[${COMMAND.map((c) => JSON.stringify(c)).join(', ')}]`
    await bed.apply(bed.host(0), `stack: ${SERVICE}\nservices:\n  ${SERVICE}:\n    image: ${IMAGE}\n    command: ${command}\n    replicas: ${n}\n`)
  },
  async remove(bed) {
    await bed.cli(bed.host(0), ['rm', SERVICE], 30_000)
  },
  leader: (bed) => bed.leader(),
  pids: (h) => ({ engine: h.dockerd?.pid, orchestrator: h.peer?.pid }),
}

// Every bed that is up or coming up, so that Ctrl-C (or a failure anywhere) still tears it down.
const live = new Set<TestBed>()
const coming = new Set<Promise<TestBed>>()
const downs = new Map<TestBed, Promise<void>>()
let interrupted = false
async function track(p: Promise<TestBed>): Promise<TestBed> {
  coming.add(p)
  try {
    const bed = await p
    live.add(bed)
    if (interrupted) {
      await down(bed)
      throw new Error('interrupted')
    }
    return bed
  } finally {
    coming.delete(p)
  }
}
/** Tear a bed down once; every caller waits for the same teardown. */
function down(bed: TestBed | undefined): Promise<void> {
  if (bed === undefined) return Promise.resolve()
  live.delete(bed)
  let d = downs.get(bed)
  if (d === undefined) downs.set(bed, (d = bed.down()))
  return d
}
const downAll = (): Promise<unknown> => Promise.allSettled([...live].map((b) => down(b)))
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return
    interrupted = true
    console.error(`\n${sig}: tearing down the test beds …`)
    void (async () => {
      // The beds that are up, then any still coming up (up() is bounded), then all of them again.
      for (let i = 0; i < 3 && (live.size > 0 || coming.size > 0); i++) {
        await downAll()
        await Promise.allSettled([...coming])
      }
      await downAll()
      await Promise.allSettled([...downs.values()])
      process.exit(130)
    })()
  })
}

/** Containers of a host's engine with `label` (running ones unless `all`), over its socket; a dead engine counts 0. */
function count(h: Host, label: string, all = false): Promise<number> {
  if (h.dockerd === undefined) return Promise.resolve(0)
  const filters = encodeURIComponent(JSON.stringify({ label: [label], ...(all ? {} : { status: ['running'] }) }))
  return new Promise((ok) => {
    const req = request({ socketPath: h.dockerHost.replace(/^unix:\/\//, ''), path: `/containers/json?all=${all ? 1 : 0}&filters=${filters}`, timeout: 2000 }, (res) => {
      let body = ''
      res.on('data', (b: Buffer) => (body += b.toString()))
      res.on('end', () => {
        try {
          const list = JSON.parse(body) as unknown
          ok(Array.isArray(list) ? list.length : 0)
        } catch {
          ok(0)
        }
      })
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => ok(0))
    req.end()
  })
}

const counts = (bed: TestBed, label: string, all = false): Promise<number[]> => Promise.all(bed.hosts.map((h) => count(h, label, all)))
const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0)

/** Poll every POLL_MS until at least `n` containers run across the engines; ms since `t0`. */
async function untilRunning(bed: TestBed, label: string, n: number, t0: number, timeoutMs: number): Promise<number> {
  const deadline = t0 + timeoutMs
  let last: number[] = []
  for (let i = 0; i < Math.ceil(timeoutMs / POLL_MS) + 1 && performance.now() < deadline; i++) {
    last = await counts(bed, label)
    if (sum(last) >= n) return performance.now() - t0
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
  throw new Error(`timed out after ${fmtMs(timeoutMs)} waiting for ${n} running (last: ${last.join('/')} per host)`)
}

// Results: per step and system, one entry per run (a number of ms, or a failure).
type Run = { ms: number } | { failed: string }
const results = new Map<string, Run[]>()
const key = (step: StepName, sys: System): string => `${step}|${sys.name}`
function record(step: StepName, sys: System, run: number, r: Run, note = ''): void {
  const list = results.get(key(step, sys)) ?? []
  list.push(r)
  results.set(key(step, sys), list)
  const fig = 'ms' in r ? fmtMs(r.ms) : `FAILED (${r.failed})`
  console.log(`  ${sys.name.padEnd(5)} ${step}, run ${run + 1}/${RUNS}: ${fig}${note}`)
}

// Memory per host after the 6 replicas have settled (loss beds, before the kill): MB of RSS.
const memory = { Swarm: { engine: [] as number[], orchestrator: [] as number[] }, Skein: { engine: [] as number[], orchestrator: [] as number[] } }
function rssMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) / 1024
  } catch {
    return undefined
  }
}

async function deploySeries(sys: System): Promise<void> {
  let bed: TestBed | undefined
  try {
    for (let run = 0; run < RUNS && !interrupted; run++) {
      for (const [step, n] of [['deploy 6', 6], ['deploy 30', 30]] as const) {
        bed ??= await sys.up()
        try {
          const t0 = performance.now()
          await sys.deploy(bed, n)
          record(step, sys, run, { ms: await untilRunning(bed, sys.label, n, t0, DEPLOY_TIMEOUT_MS) })
        } catch (err) {
          record(step, sys, run, { failed: String(err instanceof Error ? err.message : err).slice(0, 160) })
        }
        try {
          await sys.remove(bed)
          const b = bed
          await until(`every ${SERVICE} container gone`, async () => sum(await counts(b, sys.label, true)) === 0, GONE_TIMEOUT_MS, 250)
        } catch (err) {
          console.log(`  ${sys.name}: removing the service failed (${String(err)}); a fresh bed for the next run`)
          await down(bed)
          bed = undefined
        }
      }
    }
  } finally {
    await down(bed)
  }
}

async function lossRun(sys: System, step: StepName, run: number): Promise<void> {
  let bed: TestBed | undefined
  try {
    bed = await sys.up()
    const b = bed
    const t = performance.now()
    await sys.deploy(b, 6)
    await untilRunning(b, sys.label, 6, t, DEPLOY_TIMEOUT_MS)
    // Settled: 2 per host (both spread evenly); bounded, and the run goes on if it stays uneven.
    let spread: number[] = []
    await until('2 replicas on every host', async () => (spread = await counts(b, sys.label)).every((c) => c === 2), 30_000, 250).catch(() => undefined)
    const leader = await sys.leader(b)
    const victim = step === "lose the leader's host" ? leader : ([...b.hosts].reverse().find((h) => h !== leader) as Host)
    for (const h of b.hosts) {
      const p = sys.pids(h)
      const e = rssMb(p.engine)
      const o = rssMb(p.orchestrator)
      if (e !== undefined) memory[sys.name].engine.push(e)
      if (o !== undefined) memory[sys.name].orchestrator.push(o)
    }
    const t0 = performance.now()
    await b.killHost(victim.index)
    const ms = await untilRunning(b, sys.label, 6, t0, LOSS_TIMEOUT_MS)
    record(step, sys, run, { ms }, `  (leader ${leader.name}, lost ${victim.name}; before: ${spread.join('/')} per host)`)
  } catch (err) {
    record(step, sys, run, { failed: String(err instanceof Error ? err.message : err).slice(0, 160) })
  } finally {
    await down(bed)
  }
}

// ---- the run ----

const started = performance.now()
const dateUtc = execFileSync('date', ['-u'], { encoding: 'utf8' }).trim()
const cpu = os.cpus()
const machine = `${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB memory, Linux ${os.release()}, dockerd ${execFileSync('dockerd', ['--version'], { encoding: 'utf8' }).trim().replace(/^Docker version /, '')}`
let failure: unknown
function size(f: string): string {
  return f === '' ? '—' : `${(statSync(f).size / 1024 / 1024).toFixed(0)} MiB`
}
let skeinBin = ''
let skeinBinSize = ''
let skeinVersion = ''
try {
  console.log(`building the skein executable from the working tree (or SKEIN_CLUSTER_BIN) …`)
  const [bin] = await skeinCommand()
  skeinBin = bin ?? ''
  skeinVersion = execFileSync(skeinBin, ['version'], { encoding: 'utf8' }).trim()
  skeinBinSize = size(skeinBin) // now: the built executable is removed at the end
  console.log(`${skeinVersion}; ${machine}`)

  for (const sys of [swarm, skein]) {
    if (interrupted) break
    console.log(`\n${sys.name}: deploy 6 and deploy 30, ${RUNS} runs on one bed of ${HOSTS} hosts`)
    await deploySeries(sys)
  }
  for (const { name: step } of STEPS.slice(2)) {
    console.log(`\n${step}: ${RUNS} runs per system, a fresh bed of ${HOSTS} hosts each`)
    for (let run = 0; run < RUNS && !interrupted; run++) {
      for (const sys of [swarm, skein]) if (!interrupted) await lossRun(sys, step, run)
    }
  }
} catch (err) {
  failure = err
  console.error(`\nbench failed: ${err instanceof Error ? err.message : String(err)}`)
} finally {
  await downAll()
  await releaseSkeinCommand()
}
const totalMs = performance.now() - started

// ---- the table ----

const ok = (rs: readonly Run[]): number[] => rs.flatMap((r) => ('ms' in r ? [r.ms] : []))
function cell(rs: readonly Run[]): string {
  const xs = ok(rs)
  if (xs.length === 0) return rs.length === 0 ? '—' : 'failed'
  return `${fmtMs(percentile(xs, 50))} (${fmtMs(Math.min(...xs))}–${fmtMs(Math.max(...xs))})`
}
function ratio(a: readonly Run[], b: readonly Run[]): string {
  const x = ok(a)
  const y = ok(b)
  if (x.length === 0 || y.length === 0) return '—'
  const r = percentile(x, 50) / percentile(y, 50)
  return r >= 1 ? `Skein ×${r.toFixed(1)} faster` : `Skein behind (×${(1 / r).toFixed(1)} slower)`
}
function runs(rs: readonly Run[]): string {
  const failed = rs.length - ok(rs).length
  return `${ok(rs).length}/${RUNS}${failed > 0 ? ` (${failed} failed)` : ''}`
}
const rows: string[][] = [['step', 'Swarm p50 (min–max)', 'Skein p50 (min–max)', 'Swarm/Skein', 'runs ok (Swarm, Skein)']]
for (const s of STEPS) {
  const a = results.get(key(s.name, swarm)) ?? []
  const b = results.get(key(s.name, skein)) ?? []
  rows.push([s.what, cell(a), cell(b), ratio(a, b), `${runs(a)}, ${runs(b)}`])
}
const avg = (xs: readonly number[]): number => (xs.length === 0 ? 0 : sum(xs) / xs.length)
const mean = (xs: readonly number[]): string => (xs.length === 0 ? '—' : `${avg(xs).toFixed(0)} MB`)
const dockerdPath = execFileSync('sh', ['-c', 'command -v dockerd'], { encoding: 'utf8' }).trim()
const footprint: string[][] = [
  ['per host', 'Swarm', 'Skein'],
  ['engine (dockerd) RSS, idle with 2 replicas, mean', `${mean(memory.Swarm.engine)} (the Swarm manager is inside it)`, mean(memory.Skein.engine)],
  ['orchestrator process RSS, mean', 'none (inside dockerd)', mean(memory.Skein.orchestrator)],
  ['engine + orchestrator RSS, mean', mean(memory.Swarm.engine), memory.Skein.engine.length === 0 ? '—' : `${(avg(memory.Skein.engine) + avg(memory.Skein.orchestrator)).toFixed(0)} MB`],
  ['on disk', `dockerd ${size(dockerdPath)} (Swarm built in)`, `skein executable ${skeinBinSize === '' ? '—' : skeinBinSize}, on top of dockerd`],
]
const title = `Docker Swarm vs Skein, ${HOSTS} namespace hosts (one dockerd each), ${IMAGE}, p50 over ${RUNS} runs (polled every ${POLL_MS} ms)`
printTable(title, rows)
printTable('Footprint (sampled on the loss beds, before the kill)', footprint)
console.log(`\n${dateUtc}; ${machine}; total run time ${fmtMs(totalMs)}`)

const md = (r: string[][]): string => [r[0]!, r[0]!.map(() => '---'), ...r.slice(1)].map((x) => `| ${x.join(' | ')} |`).join('\n')
const rawRuns = STEPS.flatMap((s) => [swarm, skein].map((sys) =>
  `- ${s.name}, ${sys.name}: ${(results.get(key(s.name, sys)) ?? []).map((r) => ('ms' in r ? fmtMs(r.ms) : `failed (${r.failed})`)).join(', ') || '—'}`))
const report = `# Docker Swarm vs Skein (\`npm run bench:compare\`)

- Date: ${dateUtc}
- Machine: ${machine}
- Command: \`${process.env.RUNS === undefined ? '' : `RUNS=${RUNS} `}npm run bench:compare\` (\`node bench/compare.ts\`), as root
- Skein: ${skeinVersion || 'unknown'} (the single executable built from the working tree)
- Total run time: ${fmtMs(totalMs)}${interrupted ? ' (interrupted)' : ''}${failure === undefined ? '' : ` (the bench failed: ${String(failure instanceof Error ? failure.message : failure)})`}

The test bed of test/cluster/harness.ts: ${HOSTS} hosts, each a network namespace with its own
address and its own Docker engine. Swarm: a manager on every host (h1 inits, the others join as
managers). Skein: a peer on every host. Both run \`${IMAGE}\` with the command
\`${COMMAND_TEXT}\`, with their own defaults otherwise. Deploys are timed from the command on
h1 (\`docker service create -d\` / \`skein apply\`) until N containers run; host losses from the kill
of every process in the host's namespace (and its link) until 6 run again on the others. Every
engine is polled every ${POLL_MS} ms for running containers with the service's label; a dead
engine counts 0. Deploy runs share one bed per system; every loss run has a fresh bed.

## ${title}

${md(rows)}

## Footprint (sampled on the loss beds, before the kill)

${md(footprint)}

## Every run

${rawRuns.join('\n')}
`
await mkdir(join(OUT, '..'), { recursive: true })
await writeFile(OUT, report)
console.log(`written to ${OUT}`)
if (failure !== undefined || interrupted) process.exitCode = 1
