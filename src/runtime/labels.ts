// The labels on every Skein container, and the pure mapping from a canonical ServiceSpec plus a
// replica's identity to the ContainerSpec the runtime creates.
import { createHash } from 'node:crypto'
import type { ServiceSpec, Mount, Healthcheck } from '../model/spec.ts'
import type { ContainerSpec, EngineHealthcheck, MountSpec, PortBinding } from './types.ts'

/** The label keys Skein puts on every container it creates. */
export const LABELS = {
  /** The cluster id: containers of other clusters on the same engine are never touched. */
  cluster: 'io.skein.cluster',
  /** The service the container belongs to. */
  service: 'io.skein.service',
  /** The replica slot within the service. */
  slot: 'io.skein.slot',
  /** The spec revision the container was created from. */
  revision: 'io.skein.revision',
  /** The host (peer id) whose agent owns the container. */
  host: 'io.skein.host',
  /** Term of the committed decision that placed it (the fencing token, with index). */
  term: 'io.skein.term',
  /** Log index of that decision. */
  index: 'io.skein.index',
} as const

/** Who a container is: one replica slot of a service, placed on a host by a committed decision. */
export interface ReplicaIdentity {
  cluster: string
  /** The service's name as the cluster knows it (the assignment's `service`). */
  service: string
  slot: string
  revision: number
  /** Host id (peer id) of the agent that runs it. */
  host: string
  term: number
  index: number
}

/** The Skein labels for a replica. */
export function skeinLabels(r: ReplicaIdentity): Record<string, string> {
  return {
    [LABELS.cluster]: r.cluster,
    [LABELS.service]: r.service,
    [LABELS.slot]: r.slot,
    [LABELS.revision]: String(r.revision),
    [LABELS.host]: r.host,
    [LABELS.term]: String(r.term),
    [LABELS.index]: String(r.index),
  }
}

/** The label filter for every container one host owns in a cluster (for `list` and `events`). */
export function hostSelector(cluster: string, host: string): Record<string, string> {
  return { [LABELS.cluster]: cluster, [LABELS.host]: host }
}

/** Reads a replica's identity back from a container's labels; null when a label is missing or malformed. */
export function replicaFromLabels(labels: Record<string, string>): ReplicaIdentity | null {
  const get = (k: string) => labels[k]
  const cluster = get(LABELS.cluster), service = get(LABELS.service), slot = get(LABELS.slot), host = get(LABELS.host)
  const revision = toCount(get(LABELS.revision)), term = toCount(get(LABELS.term)), index = toCount(get(LABELS.index))
  if (cluster === undefined || service === undefined || slot === undefined || host === undefined) return null
  if (revision === null || term === null || index === null) return null
  return { cluster, service, slot, revision, host, term, index }
}

function toCount(s: string | undefined): number | null {
  if (s === undefined || !/^\d{1,15}$/.test(s)) return null
  return Number(s)
}

/** Docker's name alphabet is `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; anything else becomes `_`. */
function nameSafe(s: string): string {
  return s.replace(/[^a-zA-Z0-9_.-]/g, '_')
}

/**
 * The container name: `skein-<service>.<slot>-<short>`, where `short` is 8 hex digits of a hash of
 * the whole identity, so two decisions (or clusters) never collide on one engine.
 */
export function containerName(r: ReplicaIdentity): string {
  const short = createHash('sha256').update(JSON.stringify([r.cluster, r.service, r.slot, r.revision, r.host, r.term, r.index])).digest('hex').slice(0, 8)
  return `skein-${nameSafe(r.service)}.${nameSafe(r.slot)}-${short}`
}

const NS_PER_MS = 1_000_000

/**
 * The engine healthcheck for a service's healthcheck: `exec` and `shell` become Docker HEALTHCHECKs,
 * `none` disables the image's own, and a null healthcheck leaves the image's own as it is. `http`
 * and `tcp` are probed by the agent (src/agent/probes.ts), not the engine (the image may have no
 * HTTP client); they replace the image's own check as any service check does, so they disable it.
 */
export function engineHealthcheck(h: Healthcheck | null): EngineHealthcheck | null {
  if (h === null) return null
  if (h.kind === 'none' || h.kind === 'http' || h.kind === 'tcp') return { test: ['NONE'], intervalNs: 0, timeoutNs: 0, retries: 0, startPeriodNs: 0 }
  const test = h.kind === 'exec' ? ['CMD', ...h.command] : ['CMD-SHELL', h.command]
  return {
    test,
    intervalNs: h.intervalMs * NS_PER_MS,
    timeoutNs: h.timeoutMs * NS_PER_MS,
    retries: h.retries,
    startPeriodNs: h.startPeriodMs * NS_PER_MS,
  }
}

function mountSpec(m: Mount): MountSpec {
  switch (m.type) {
    case 'volume':
      // The declaration's runtime name wins over the stack-level key.
      return { type: 'volume', source: m.volume?.name ?? m.source, target: m.target, readOnly: m.readOnly }
    case 'bind':
      return { type: 'bind', source: m.source, target: m.target, readOnly: m.readOnly }
    case 'tmpfs':
      return { type: 'tmpfs', target: m.target, sizeBytes: m.sizeBytes, mode: m.mode }
  }
}

/**
 * The ContainerSpec for one replica of a service (pure). Service labels come first, so the Skein
 * labels cannot be overridden by a spec. Every port is published on the host where the replica runs
 * (there is no ingress mesh: `ingress` and `host` modes both bind on the host).
 */
export function containerSpecFor(service: ServiceSpec, replica: ReplicaIdentity): ContainerSpec {
  const ports: PortBinding[] = service.ports.map((p) => ({ containerPort: p.target, protocol: p.protocol, hostPort: p.published, hostIp: p.hostIp }))
  const milli = service.resources.limits.milliCpu
  return {
    name: containerName(replica),
    image: service.image,
    command: service.command === null ? null : [...service.command],
    entrypoint: service.entrypoint === null ? null : [...service.entrypoint],
    env: { ...service.env },
    workingDir: service.workingDir,
    user: service.user,
    ports,
    memoryBytes: service.resources.limits.memoryBytes,
    nanoCpus: milli === null ? null : milli * 1_000_000,
    pidsLimit: service.resources.limits.pids,
    network: service.network,
    mounts: service.mounts.map(mountSpec),
    labels: { ...service.labels, ...skeinLabels(replica) },
    healthcheck: engineHealthcheck(service.healthcheck),
  }
}
