/**
 * The running flow in one process (docs/simulation.md): N hosts on a virtual clock, each with the
 * real Raft core and the applied state machine of consensus/commands.ts (the assignment table),
 * the real desired-state replica (through StateSim, whose scheduler drives everything here), a
 * leader-only scheduler session calling the real reconcile and proposing through the log, and an
 * agent per host calling the real `step` against a small sim-clock container engine. Observed rows
 * travel on the gossip mesh. Membership is a documented simplification: an observer sees a host
 * suspect, then dead, once it has been unreachable for `suspectMs` / `deadMs`.
 *
 * The cluster records what the agents do (with the applied log position they decided from) and
 * checks some invariants online (one leader per term, no lasting over-replication, static
 * stability of partitioned hosts, no action without applied log state beyond a start on the last
 * known assignment); running-checks.ts checks the rest against the final log. The hosts and the
 * records are in running-host.ts.
 */
import { applyEntry, emptyAppState, encodeCommand } from '../consensus/commands.ts'
import { encodeConfChange } from '../consensus/confchange.ts'
import { createRaft } from '../consensus/raft.ts'
import type { Entry as RaftEntry, RaftMessage } from '../consensus/types.ts'
import { lastKnownGate } from '../agent/last-known.ts'
import { generationOf, GENERATION_LABEL, sameCopy, step, type AgentAction, type SlotBook } from '../agent/step.ts'
import { allRows, checkSender, mergeObserved, nextVersion, sortRows, type ObservedMessage } from '../agent/observed.ts'
import { randRange, seededRng, type Rng } from '../core/rng.ts'
import type { MemberState } from '../membership/types.ts'
import { decodeService, encodeService, type ServiceSpec } from '../model/index.ts'
import { LABELS, skeinLabels } from '../runtime/labels.ts'
import type { ContainerInfo } from '../runtime/types.ts'
import { toCommand } from '../scheduler/commit.ts'
import { reconcile } from '../scheduler/reconcile.ts'
import { fitCommand } from '../scheduler/service.ts'
import { slotKey, type Assignment, type NodeInfo, type ObservedReplica } from '../scheduler/types.ts'
import type { Entry as StateEntry } from '../state/types.ts'
import type { Scheduler } from './scheduler.ts'
import { CLUSTER_ID, SimHost, TICK_MS, type AckedWrite, type ActionRecord, type CrashMode, type RunningSimOptions, type Session } from './running-host.ts'
import { StateSim } from './state-cluster.ts'
import { SimWire } from './wire.ts'

/** The cluster. */
export class RunningCluster {
  readonly opts: RunningSimOptions
  readonly seed: number
  readonly state: StateSim
  readonly sched: Scheduler
  readonly rng: Rng
  readonly wire: SimWire<{ t: 'raft'; m: RaftMessage }, ObservedMessage>
  readonly hosts = new Map<string, SimHost>()
  readonly ids: string[]
  readonly violations: string[] = []
  readonly actions: ActionRecord[] = []
  readonly acked: AckedWrite[] = []
  /** term → leader. */
  readonly leaders = new Map<number, string>()
  /** Counters for reports. */
  readonly counts = { proposals: 0, committed: 0, rounds: 0, agentRounds: 0, crashes: 0, partitions: 0, lastKnownOpens: 0, lastKnownStarts: 0 }
  #over = new Map<string, number>()
  /** The highest commit index any host has known. */
  #maxCommit = 0
  /** Containers that exited by an injected fault (not by an agent). */
  #crashed = new Set<string>()
  #partitionWatch: { hosts: Set<string>; running: Map<string, { host: string; life: number; engine: number }> } | undefined

  constructor(opts: RunningSimOptions) {
    this.opts = opts
    this.seed = opts.seed
    this.rng = seededRng(opts.seed ^ 0x7a11)
    this.state = new StateSim({ seed: opts.seed, faults: { delay: [1, 10], ...opts.net }, config: { antiEntropyIntervalMs: 2_000 } })
    this.sched = this.state.sched
    this.ids = this.state.add(opts.hosts)
    this.wire = new SimWire<{ t: 'raft'; m: RaftMessage }, ObservedMessage>(
      { sched: this.sched, rng: seededRng(opts.seed ^ 0x5eed), faults: { delay: [1, 10], ...opts.net }, violations: this.violations },
      {
        decodeDirect: () => ({ ok: false, reason: 'the running simulation carries objects, not bytes' }),
        decodeBroadcast: () => ({ ok: false, reason: 'the running simulation carries objects, not bytes' }),
        checkBroadcast: checkSender,
        checkName: 'checkSender',
        onDirect: (at, _from, msg) => this.#raftMessage(at, msg.m),
        onBroadcast: (at, _publisher, msg) => this.#observedMessage(at, msg),
      },
    )
    const voters = opts.voters ?? Math.min(3, opts.hosts)
    this.ids.forEach((id, k) => {
      const h = new SimHost(id, `node${k}`, { zone: `z${k % 3}` }, k < voters)
      // Every initial member is bootstrapped alike: the voters, then the learners, at term 1.
      const changes = this.ids.map((m, i) => ({ type: i < voters ? 'add-voter' : 'add-learner', id: m }) as const)
      h.storage.append(changes.map((c, i) => ({ term: 1, index: i + 1, type: 'conf', data: encodeConfChange(c) })))
      h.storage.setHardState({ term: 1, vote: null, commit: changes.length })
      this.hosts.set(id, h)
      this.wire.mesh.addNode(id)
    })
    this.state.onEffect((peer, eff) => {
      if (eff.type === 'refused') return
      const h = this.hosts.get(peer)
      if (h === undefined || !h.up) return
      this.#agentNotify(h)
      this.#poke(h)
    })
    this.ids.forEach((id, k) => this.#boot(this.host(id), k === 0))
    this.sched.every(250, () => this.#monitor(), 250)
  }

  host(id: string): SimHost {
    const h = this.hosts.get(id)
    if (h === undefined) throw new Error(`no simulated host ${id}`)
    return h
  }

  now(): number {
    return this.sched.now()
  }

  fail(msg: string): void {
    this.violations.push(`t=${this.now()} ${msg}`)
  }

  // ---- process lifecycle ----

  #boot(h: SimHost, founder = false): void {
    h.life++
    h.up = true
    h.flushPending = false
    h.gateKnown = false
    h.gateTarget = undefined
    h.gateAsking = false
    h.books = new Map()
    h.observed = new Map()
    h.mine = []
    h.version = 0
    h.agentBusy = false
    h.agentAgain = false
    h.session = undefined
    h.specCache = new Map()
    h.committedAtBoot = this.#maxCommit
    h.view = new Map(this.ids.filter((x) => x !== h.id).map((x) => [x, { lastHeard: this.now(), state: 'alive', since: this.now() }]))
    // The application keeps nothing of its own: the core hands it every committed entry again.
    h.app = emptyAppState()
    h.raft = createRaft({ id: h.id, storage: h.storage, rng: seededRng(Math.floor(this.rng.next() * 2 ** 32)) })
    h.noLeaderSince = this.now()
    // As the peer's running flow: created at start, it reads the Raft status's leader and the clock.
    const raft = h.raft
    h.useLastKnown = lastKnownGate(() => raft.status().leader !== null, () => this.now(), () => { this.counts.lastKnownOpens++ })
    this.wire.register(h.id)
    this.wire.mesh.reset(h.id)
    if (this.state.core(h.id) === undefined) this.state.start(h.id, { founder })
    // As the consensus service's first Ready: the committed prefix on disk (the hard state's commit)
    // is applied again at once, so the table is what this host had applied before (no compaction).
    this.#flush(h)
    const life = h.life
    const every = (period: number, fn: () => void, phase: number): void => {
      h.timers.push(this.sched.every(period, () => { if (h.life === life && h.up) fn() }, phase))
    }
    every(TICK_MS, () => {
      h.raft?.tick()
      this.#touched(h)
    }, randRange(this.rng, 0, TICK_MS))
    every(100, () => this.#membershipTick(h), randRange(this.rng, 0, 100))
    every(250, () => this.#gateCheck(h), randRange(this.rng, 0, 250))
    every(this.opts.agentIntervalMs ?? 2_000, () => this.#agentNotify(h), randRange(this.rng, 0, 2_000))
    every(this.opts.publishIntervalMs ?? 10_000, () => { if (h.version > 0) this.#publish(h) }, randRange(this.rng, 0, 10_000))
    this.#touched(h)
    this.#agentNotify(h)
  }

  /** Take a host down. `process`: the peer process dies, its containers keep running. */
  crash(id: string, mode: CrashMode = 'process'): void {
    const h = this.host(id)
    if (!h.up) return
    this.counts.crashes++
    h.up = false
    h.life++
    for (const t of h.timers) t.cancel()
    h.timers = []
    if (h.session !== undefined) this.#dispose(h.session)
    h.session = undefined
    h.raft = undefined
    this.wire.net.crash(id)
    this.state.crash(id)
    if (mode !== 'process') {
      h.engineEpoch++
      if (mode === 'power-gone') h.containers.clear()
      for (const c of h.containers.values()) {
        if (c.state === 'running' || c.state === 'created') {
          c.state = 'exited'
          c.exitCode = 137
          c.finishedAt = this.now()
        }
      }
    }
  }

  /** Start a crashed host again from its durable state (and whatever its engine still holds). */
  restart(id: string): void {
    const h = this.host(id)
    if (h.up) return
    this.state.start(id)
    this.#boot(h)
  }

  /** A container exits on its own (its agent's restart policy applies). */
  crashContainer(host: string, containerId: string, exitCode = 1): void {
    const c = this.host(host).containers.get(containerId)
    if (c === undefined || c.state !== 'running') return
    c.state = 'exited'
    c.exitCode = exitCode
    c.finishedAt = this.now()
    this.#crashed.add(containerId)
    this.#agentNotify(this.host(host))
  }

  // ---- network ----

  partition(groups: string[][]): void {
    this.counts.partitions++
    this.wire.net.partition(groups)
    this.state.net.partition(groups)
    this.#watchPartition()
  }

  heal(): void {
    this.#checkPartitionWatch()
    this.#partitionWatch = undefined
    this.wire.net.heal()
    this.state.net.heal()
  }

  canReach(a: string, b: string): boolean {
    return this.host(a).up && this.host(b).up && this.wire.net.canReach(a, b)
  }

  // ---- raft shell ----

  #raftMessage(at: string, m: RaftMessage): void {
    const h = this.hosts.get(at)
    if (h?.raft === undefined) return
    h.raft.step(m)
    this.#touched(h)
  }

  #touched(h: SimHost): void {
    if (h.raft === undefined) return
    if (h.raft.status().leader !== null) h.noLeaderSince = null
    else h.noLeaderSince ??= this.now()
    if (h.flushPending || !h.raft.hasReady()) return
    h.flushPending = true
    const life = h.life
    this.sched.after(0, () => {
      if (h.life !== life) return
      h.flushPending = false
      this.#flush(h)
    })
  }

  /** The Ready loop: persist, send, apply, advance. */
  #flush(h: SimHost): void {
    const raft = h.raft
    if (raft === undefined) return
    for (let guard = 0; h.raft === raft && raft.hasReady() && guard < 1000; guard++) {
      const rd = raft.ready()
      if (rd.snapshot !== undefined) throw new Error('the running simulation does not compact, so it never sends snapshots')
      if (rd.entries.length > 0) h.storage.append(rd.entries)
      if (rd.hardState !== undefined) h.storage.setHardState(rd.hardState)
      for (const m of rd.messages) this.wire.send(h.id, m.to, { t: 'raft', m })
      for (const e of rd.committed) this.#apply(h, e)
      raft.advance(rd)
      // The consensus service emits 'leader' on a new leader or role; the peer's agent is notified.
      if (rd.softState !== undefined) this.#agentNotify(h)
    }
    this.#maxCommit = Math.max(this.#maxCommit, raft.status().commit)
    this.#follow(h)
  }

  #apply(h: SimHost, e: RaftEntry): void {
    const c = applyEntry(h.app, e)
    if (c.kind === 'invalid') this.fail(`${h.id} applied an undecodable entry ${e.index}@${e.term}: ${c.reason}`)
    const s = h.session
    if (s?.inFlight != null && e.index === s.inFlight.index) {
      const ok = e.term === s.inFlight.term
      s.inFlight.timeout.cancel()
      s.inFlight = null
      if (ok) this.counts.committed++
      this.#settle(h, s, ok ? this.#debounce() : this.#interval())
    }
    this.#agentNotify(h)
    this.#poke(h)
  }

  /** Leadership changes start and end the scheduler session; also checks one leader per term. */
  #follow(h: SimHost): void {
    const st = h.raft?.status()
    if (st === undefined) return
    if (st.role === 'leader' && h.storage.initialState().hardState.term === st.term) {
      const known = this.leaders.get(st.term)
      if (known !== undefined && known !== h.id) this.fail(`two leaders in term ${st.term}: ${known} and ${h.id}`)
      this.leaders.set(st.term, h.id)
    }
    const s = h.session
    if (s !== undefined && (st.role !== 'leader' || st.term !== s.term)) {
      this.#dispose(s)
      h.session = undefined
    }
    if (st.role === 'leader' && h.session === undefined) {
      const ns: Session = { term: st.term, readyAt: st.lastIndex, timer: undefined, due: 0, inFlight: null, dirty: false }
      h.session = ns
      this.#schedule(h, ns, 0)
    }
  }

  /** The live host leading at the highest term, if any. */
  leader(): string | undefined {
    let best: { id: string; term: number } | undefined
    for (const h of this.hosts.values()) {
      const st = h.raft?.status()
      if (st?.role === 'leader' && (best === undefined || st.term > best.term)) best = { id: h.id, term: st.term }
    }
    return best?.id
  }

  // ---- the applied-state gate (src/peer/running.ts appliedStateGate) ----

  #gateCheck(h: SimHost): void {
    const raft = h.raft
    if (h.gateKnown || raft === undefined) return
    const st = raft.status()
    if (st.leader === null) return
    if (st.role === 'leader' && h.gateTarget?.term !== st.term) h.gateTarget = { term: st.term, index: st.lastIndex }
    if (st.role !== 'leader' && h.gateTarget?.term !== st.term && !h.gateAsking) {
      // The follower asks the leader for its last index (the admin `voters` query): a round trip.
      const leaderId = st.leader
      const life = h.life
      h.gateAsking = true
      this.sched.after(randRange(this.rng, 2, 20), () => {
        if (h.life !== life) return
        h.gateAsking = false
        const ls = this.hosts.get(leaderId)?.raft?.status()
        if (ls === undefined || !this.canReach(h.id, leaderId) || ls.role !== 'leader' || ls.term !== st.term) return
        if (raft.status().term === st.term) h.gateTarget = { term: st.term, index: ls.lastIndex }
        this.#gateCheck(h)
      })
    }
    const t = h.gateTarget
    if (t !== undefined && t.term === st.term && st.applied > 0 && st.applied >= t.index) {
      h.gateKnown = true
      this.#agentNotify(h)
    }
  }

  // ---- membership (simplified: unreachable for a while → suspect → dead) ----

  #membershipTick(h: SimHost): void {
    const now = this.now()
    const suspectMs = this.opts.suspectMs ?? 500
    const deadMs = this.opts.deadMs ?? 1_200
    let changed = false
    for (const [id, v] of h.view) {
      if (this.canReach(h.id, id)) v.lastHeard = now
      const quiet = now - v.lastHeard
      const next: MemberState = quiet < suspectMs ? 'alive' : quiet < deadMs ? 'suspect' : 'dead'
      if (next !== v.state) {
        v.state = next
        v.since = now
        changed = true
      }
    }
    if (changed) this.#poke(h)
  }

  /** What a host's scheduler knows of the hosts. */
  nodes(h: SimHost): NodeInfo[] {
    return this.ids.map((id) => {
      const x = this.host(id)
      const v = h.view.get(id)
      const until = h.app.restarting.get(id)
      return {
        id, name: x.name, labels: x.labels, state: v?.state ?? 'alive', since: v?.since ?? 0, drained: h.app.drained.has(id),
        capacity: { milliCpu: 4_000, memoryBytes: 8 * 1024 ** 3 },
        ...(until === undefined ? {} : { restartingUntil: until }),
      }
    })
  }

  // ---- desired state ----

  /** The live desired services at a host's replica (decoded), with their revisions. */
  desired(h: SimHost): { specs: ServiceSpec[]; revisions: Record<string, number> } {
    const specs: ServiceSpec[] = []
    const revisions: Record<string, number> = {}
    for (const e of this.state.core(h.id)?.live() ?? []) {
      const spec = this.#spec(h, e)
      if (spec === null) continue
      specs.push(spec)
      revisions[spec.name] = e.revision
    }
    return { specs, revisions }
  }

  #spec(h: SimHost, e: StateEntry | undefined): ServiceSpec | null {
    if (e?.value == null) return null
    const cached = h.specCache.get(e.key)
    if (cached !== undefined && cached.value === e.value) return cached.spec
    let spec: ServiceSpec | null = null
    try {
      spec = decodeService(e.value)
    } catch (err) {
      this.fail(`${h.id} cannot decode the spec of ${e.key}: ${String(err)}`)
    }
    h.specCache.set(e.key, { value: e.value, spec })
    return spec
  }

  /** The operator writes services (spec) or removes them (null) through a host's API. */
  write(at: string, changes: { name: string; spec: ServiceSpec | null }[]): boolean {
    if (!this.host(at).up) return false
    const results = this.state.apply(at, changes.map((c) => ({ key: c.name, value: c.spec === null ? null : encodeService(c.spec) })))
    for (const r of results) if (r.written && r.entry !== undefined) this.acked.push({ t: this.now(), at, entry: r.entry })
    return true
  }

  /** `skein drain` / `undrain` through the leader's log; false when there is no leader. */
  drain(host: string, drained: boolean): boolean {
    const l = this.leader()
    if (l === undefined) return false
    const lh = this.host(l)
    const r = lh.raft?.propose(encodeCommand({ kind: 'drain', host, drained }))
    this.#touched(lh)
    return r?.ok === true
  }

  // ---- the leader's scheduler session (src/scheduler/service.ts, on the virtual clock) ----

  #debounce(): number {
    return this.opts.debounceMs ?? 50
  }

  #interval(): number {
    return this.opts.intervalMs ?? 1_000
  }

  #poke(h: SimHost): void {
    if (h.session !== undefined) this.#schedule(h, h.session, this.#debounce())
  }

  #schedule(h: SimHost, s: Session, delay: number): void {
    if (h.session !== s) return
    if (s.inFlight !== null) {
      s.dirty = true
      return
    }
    const at = this.now() + delay
    if (s.timer !== undefined) {
      if (s.due <= at) return
      s.timer.cancel()
    }
    s.due = at
    s.timer = this.sched.at(at, () => this.#round(h, s))
  }

  #settle(h: SimHost, s: Session, delay: number): void {
    if (s.dirty) delay = Math.min(delay, this.#debounce())
    s.dirty = false
    this.#schedule(h, s, delay)
  }

  #dispose(s: Session): void {
    s.timer?.cancel()
    s.timer = undefined
    s.inFlight?.timeout.cancel()
    s.inFlight = null
  }

  #round(h: SimHost, s: Session): void {
    s.timer = undefined
    const raft = h.raft
    if (h.session !== s || raft === undefined) return
    const st = raft.status()
    if (st.role !== 'leader' || st.term !== s.term) return
    if (st.applied < s.readyAt) {
      this.#schedule(h, s, this.#debounce())
      return
    }
    this.counts.rounds++
    const { specs, revisions } = this.desired(h)
    const out = reconcile({ services: specs, revisions, assignments: h.app.table.all(), observed: allRows(h.observed), nodes: this.nodes(h), now: this.now() })
    const full = toCommand(out)
    if (full === null) {
      this.#schedule(h, s, this.#interval())
      return
    }
    const r = raft.propose(encodeCommand(fitCommand(full)))
    this.#touched(h)
    if (!r.ok) {
      this.#schedule(h, s, this.#interval())
      return
    }
    this.counts.proposals++
    const timeout = this.sched.after(this.opts.commitTimeoutMs ?? 5_000, () => {
      if (s.inFlight?.index !== r.index) return
      s.inFlight = null
      this.#settle(h, s, this.#interval())
    })
    s.inFlight = { term: r.term, index: r.index, timeout }
  }

  // ---- the agent (src/agent/service.ts, on the virtual clock) ----

  #agentNotify(h: SimHost): void {
    if (!h.up) return
    if (h.agentBusy) {
      h.agentAgain = true
      return
    }
    h.agentBusy = true
    const life = h.life
    this.sched.after(0, () => {
      if (h.life === life) this.#agentRound(h, 0)
    })
  }

  /** One round of the agent loop; `followUps` counts rounds in a row that acted. */
  #agentRound(h: SimHost, followUps: number): void {
    const raft = h.raft
    if (raft === undefined) return
    this.counts.agentRounds++
    h.agentAgain = false
    const life = h.life
    const now = this.now()
    const all = h.gateKnown ? h.app.table.all() : 'unknown'
    const applied = { index: h.app.applied, term: raft.termAt(h.app.applied) ?? -1 }
    const bySlot = new Map<string, Assignment>()
    if (all !== 'unknown') for (const a of all) bySlot.set(slotKey(a.service, a.slot), a)
    // As the peer: only while 'unknown', and only once its gate is open (no leader for 10 s), this
    // host's own assignments in the table it applied from its own log.
    const stale = new Map<string, Assignment>()
    if (all === 'unknown' && h.useLastKnown()) for (const a of h.app.table.all()) if (a.host === h.id) stale.set(slotKey(a.service, a.slot), a)
    const noLeaderSince = h.noLeaderSince
    const grouped = new Map<string, ContainerInfo[]>()
    for (const c of h.containers.values()) {
      const service = c.labels[LABELS.service]
      const slot = c.labels[LABELS.slot]
      if (service === undefined || slot === undefined) continue
      const k = slotKey(service, Number(slot))
      grouped.set(k, [...(grouped.get(k) ?? []), { ...c, labels: { ...c.labels } }])
    }
    const keys = new Set<string>([...grouped.keys(), ...h.books.keys()])
    for (const [k, a] of bySlot) if (a.host === h.id) keys.add(k)
    const rows: ObservedReplica[] = []
    const chains: { actions: AgentAction[]; book: SlotBook | null; records: Map<AgentAction, ActionRecord> }[] = []
    for (const k of [...keys].sort()) {
      const [service = '', slotText = '0'] = k.split('\u0000')
      const slot = Number(slotText)
      const containers = grouped.get(k) ?? []
      const assignment = all === 'unknown' ? 'unknown' : (bySlot.get(k) ?? null)
      const lastKnown = stale.get(k) ?? null
      const out = step({
        cluster: CLUSTER_ID, host: h.id, service, slot, assignment, lastKnown, containers,
        spec: this.#spec(h, this.state.core(h.id)?.get(service)), book: h.books.get(k) ?? null, now,
      })
      if (out.book === null) h.books.delete(k)
      else h.books.set(k, out.book)
      rows.push(...out.observed)
      const acts = out.actions.filter((a) => a.kind !== 'adopt')
      if (acts.length === 0) continue
      const records = new Map<AgentAction, ActionRecord>()
      for (const a of acts) {
        const c = 'id' in a ? containers.find((x) => x.id === a.id) : undefined
        // Without applied log state the one thing allowed is a start of this host's own copy of its
        // last known assignment (checked again, with the 10 s and the log, by running-checks.ts).
        if (assignment === 'unknown' && (lastKnown === null || a.kind !== 'start' || c === undefined || !sameCopy(c, lastKnown))) {
          this.fail(`${h.id} acted on ${service}.${slot} without applied log state (${a.kind}${lastKnown === null ? '' : ', beyond its last known assignment'})`)
        }
        const asg = assignment === 'unknown' ? lastKnown : assignment
        const matching = asg === null ? [] : containers.filter((x) => sameCopy(x, asg))
        records.set(a, {
          t: now, host: h.id, life, kind: a.kind as ActionRecord['kind'], service, slot,
          generation: c === undefined ? a.generation : (generationOf(c) ?? 0),
          revision: a.kind === 'create' ? a.identity.revision : Number(c?.labels[LABELS.revision] ?? -1),
          containerId: c?.id ?? null, wasRunning: c?.state === 'running',
          duplicate: c !== undefined && matching.includes(c) && matching.length > 1,
          unhealthy: c?.health === 'unhealthy',
          applied, assignment: asg, committedAtBoot: h.committedAtBoot,
          basis: assignment !== 'unknown' ? 'applied' : lastKnown === null ? 'none' : 'last-known', decidedAt: now, noLeaderSince,
        })
      }
      chains.push({ actions: acts, book: out.book, records })
    }
    let pending = chains.length
    let acted = false
    const done = (): void => {
      if (h.life !== life) return
      this.#updateRows(h, rows)
      if (acted && followUps < 2) h.agentAgain = true
      if (h.agentAgain) {
        this.sched.after(0, () => { if (h.life === life) this.#agentRound(h, acted ? followUps + 1 : 0) })
      } else {
        h.agentBusy = false
      }
    }
    if (pending === 0) {
      done()
      return
    }
    for (const chain of chains) {
      const run = (i: number): void => {
        if (h.life !== life) return
        const a = chain.actions[i]
        if (a === undefined) {
          if (--pending === 0) done()
          return
        }
        const rec = chain.records.get(a)
        if (rec !== undefined) this.actions.push({ ...rec, t: this.now() })
        if (rec?.basis === 'last-known') this.counts.lastKnownStarts++
        acted = true
        this.#execute(h, a, (ok) => {
          if (ok) run(i + 1)
          else if (--pending === 0) done()
        })
      }
      run(0)
    }
  }

  /** Carry out an action in the engine, then call `next` (false: it failed, the slot's chain stops). */
  #execute(h: SimHost, a: AgentAction, next: (ok: boolean) => void): void {
    const [lo, hi] = this.opts.opMs ?? [5, 80]
    const life = h.life
    const engine = h.engineEpoch
    const later = (ms: number, fn: () => boolean): void => {
      this.sched.after(ms, () => {
        // The engine finishes what it was asked even if the agent died; not after a power loss.
        const ok = h.engineEpoch === engine ? fn() : false
        if (h.life === life) next(ok)
      })
    }
    switch (a.kind) {
      case 'adopt':
        next(true)
        return
      case 'create': {
        later(randRange(this.rng, lo, hi), () => {
          const id = `${h.id}-c${++h.seq}`
          const labels: Record<string, string> = { ...skeinLabels(a.identity), [GENERATION_LABEL]: String(a.generation) }
          h.containers.set(id, {
            id, name: `skein-${a.service}.${a.slot}-${id}`, image: a.image, labels, state: 'running', exitCode: null,
            startedAt: this.now(), finishedAt: null, health: 'none', restartCount: 0, oomKilled: false, ports: [], ip: null,
          })
          return true
        })
        return
      }
      case 'start':
        later(randRange(this.rng, lo, hi), () => {
          const c = h.containers.get(a.id)
          if (c === undefined) return false
          if (c.state !== 'running') Object.assign(c, { state: 'running', startedAt: this.now(), exitCode: null, finishedAt: null })
          return true
        })
        return
      case 'stop': {
        const [slo, shi] = this.opts.stopMs ?? [50, 1_500]
        later(randRange(this.rng, slo, Math.min(shi, a.graceMs + 1)), () => {
          const c = h.containers.get(a.id)
          if (c?.state === 'running') Object.assign(c, { state: 'exited', exitCode: 0, finishedAt: this.now() })
          return true
        })
        return
      }
      case 'remove':
        later(randRange(this.rng, lo, hi), () => {
          h.containers.delete(a.id)
          return true
        })
        return
    }
  }

  /** Keeps a row's updatedAt when nothing else changed; publishes when anything did. */
  #updateRows(h: SimHost, rows: ObservedReplica[]): void {
    const prev = new Map(h.mine.map((r) => [`${r.service}\u0000${r.slot}\u0000${r.generation}`, r]))
    const same = (a: ObservedReplica, b: ObservedReplica): boolean => JSON.stringify({ ...a, updatedAt: 0 }) === JSON.stringify({ ...b, updatedAt: 0 })
    const next = sortRows(rows.map((r) => {
      const p = prev.get(`${r.service}\u0000${r.slot}\u0000${r.generation}`)
      return p !== undefined && same(p, r) ? p : r
    }))
    const changed = next.length !== h.mine.length || next.some((r, i) => r !== h.mine[i])
    h.mine = next
    if (changed || h.version === 0) this.#publish(h)
  }

  #publish(h: SimHost): void {
    h.version = nextVersion(h.version, this.now())
    h.observed = mergeObserved(h.observed, { host: h.id, version: h.version, rows: h.mine })
    this.#poke(h)
    this.wire.publish(h.id, { from: h.id, host: h.id, version: h.version, rows: h.mine })
  }

  #observedMessage(at: string, msg: ObservedMessage): boolean {
    const h = this.hosts.get(at)
    if (h === undefined || !h.up) return false
    if (msg.host === at) return true
    const before = h.observed
    h.observed = mergeObserved(h.observed, msg)
    if (h.observed !== before) this.#poke(h)
    return true
  }

  // ---- online checks ----

  /**
   * Running containers per host that count: the host is up and in the leader's part of the network.
   * Copies a cut-off host runs — kept running, or started again on its last known assignments after
   * a reboot — are stale by design (static stability) and count from the heal on: its agent must
   * then catch up and stop those whose slot moved within the same bound.
   */
  #monitor(): void {
    const l = this.leader()
    if (l === undefined) {
      this.#over.clear()
      return
    }
    const lh = this.host(l)
    const { specs } = this.desired(lh)
    const desired = new Map(specs.map((s) => [s.name, s]))
    const perService = new Map<string, number>()
    const perSlot = new Map<string, number>()
    for (const h of this.hosts.values()) {
      if (!this.canReach(l, h.id) && h.id !== l) continue
      const globalHere = new Map<string, number>()
      for (const c of h.containers.values()) {
        if (c.state !== 'running') continue
        const service = c.labels[LABELS.service] ?? ''
        perService.set(service, (perService.get(service) ?? 0) + 1)
        const k = `slot ${service}.${c.labels[LABELS.slot] ?? ''}`
        perSlot.set(k, (perSlot.get(k) ?? 0) + 1)
        globalHere.set(service, (globalHere.get(service) ?? 0) + 1)
      }
      for (const [service, n] of globalHere) if (desired.get(service)?.mode === 'global' && n > 1) perSlot.set(`global ${service}@${h.id}`, n)
    }
    const over = new Set<string>()
    for (const [service, n] of perService) {
      const spec = desired.get(service)
      if (spec?.mode === 'global') continue
      if (n > (spec?.replicas ?? 0)) over.add(`service ${service}`)
    }
    for (const [k, n] of perSlot) if (n > 1) over.add(k)
    const bound = this.opts.overBoundMs ?? 10_000
    for (const k of [...this.#over.keys()]) if (!over.has(k)) this.#over.delete(k)
    for (const k of over) {
      const since = this.#over.get(k)
      if (since === undefined) this.#over.set(k, this.now())
      else if (this.now() - since > bound) {
        this.fail(`${k} over-replicated for more than ${bound} ms (since t=${since}; leader ${l})`)
        this.#over.set(k, this.now())
      }
    }
  }

  /** Remember what runs, claimed by its host's applied table, on the hosts cut off from the leader. */
  #watchPartition(): void {
    this.#checkPartitionWatch()
    const l = this.leader()
    const cut = new Set(this.ids.filter((id) => this.host(id).up && (l === undefined || !this.wire.net.canReach(l, id))))
    const running = new Map<string, { host: string; life: number; engine: number }>()
    for (const id of cut) {
      const h = this.host(id)
      if (!h.gateKnown) continue
      for (const c of h.containers.values()) {
        const a = h.app.table.get(c.labels[LABELS.service] ?? '', Number(c.labels[LABELS.slot]))
        if (c.state === 'running' && a !== undefined && sameCopy(c, a)) running.set(c.id, { host: id, life: h.life, engine: h.engineEpoch })
      }
    }
    this.#partitionWatch = { hosts: cut, running }
  }

  /** Static stability: those containers still run, unless a recorded (and separately checked) action stopped them. */
  #checkPartitionWatch(): void {
    const w = this.#partitionWatch
    if (w === undefined) return
    const stopped = new Set(this.actions.filter((a) => a.kind === 'stop' || a.kind === 'remove').map((a) => a.containerId))
    for (const [id, x] of w.running) {
      const h = this.host(x.host)
      if (h.engineEpoch !== x.engine || stopped.has(id) || this.#crashed.has(id)) continue
      if (h.containers.get(id)?.state !== 'running') this.fail(`container ${id} on partitioned host ${x.host} stopped without an agent action`)
    }
  }

  // ---- time ----

  runFor(ms: number): void {
    this.sched.runFor(ms)
  }

  /** Run until `pred` gives undefined (checked every `stepMs`); the last reason, or undefined on success. */
  runUntil(pred: () => string | undefined, maxMs: number, stepMs = 100): string | undefined {
    const end = this.now() + maxMs
    let why = pred()
    while (why !== undefined && this.now() < end) {
      this.sched.runFor(stepMs)
      why = pred()
    }
    return why
  }
}
