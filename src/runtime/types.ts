// The container runtime seam: what the agent needs from a container engine, and nothing more.
// Two implementations: docker.ts (dockerode, the only importer of it) and fake.ts (in memory, for
// the simulation and unit tests). test/contract/runtime-contract.ts runs against both.
//
// Errors are SkeinErrors with one of RUNTIME_ERROR_CODES, so a caller can tell "the engine is down,
// retry" from "that container is gone" from "that image cannot be had".

/** Error codes the runtime throws (as `SkeinError.code`). */
export const RUNTIME_ERROR_CODES = {
  /** The engine does not answer (socket missing, refused, or the connection dropped). Retry later. */
  engineUnavailable: 'engine-unavailable',
  /** The image is not present and cannot be pulled. The message names the image and the reason. */
  imageUnavailable: 'image-unavailable',
  /** No container with that id or name. */
  notFound: 'container-not-found',
  /** A container with that name exists already. */
  nameConflict: 'container-name-conflict',
  /** Anything else the engine refused (bad spec, port already taken, ...). */
  failed: 'runtime-failed',
} as const

/** One of the runtime's error codes. */
export type RuntimeErrorCode = (typeof RUNTIME_ERROR_CODES)[keyof typeof RUNTIME_ERROR_CODES]

/** A published port: host port → container port. */
export interface PortBinding {
  containerPort: number
  protocol: 'tcp' | 'udp'
  /** Host port; null means exposed only. */
  hostPort: number | null
  /** Host address to bind; null means all addresses. */
  hostIp: string | null
}

/** A mount: a named (or anonymous) volume, a bind of a host path, or a tmpfs. */
export type MountSpec =
  | { type: 'volume'; source: string | null; target: string; readOnly: boolean }
  | { type: 'bind'; source: string; target: string; readOnly: boolean }
  | { type: 'tmpfs'; target: string; sizeBytes: number | null; mode: number | null }

/**
 * A healthcheck run by the engine (Docker HEALTHCHECK). `test` is Docker's form: `['CMD', ...argv]`,
 * `['CMD-SHELL', text]` or `['NONE']` (disable the image's check). Durations in nanoseconds.
 */
export interface EngineHealthcheck {
  test: string[]
  intervalNs: number
  timeoutNs: number
  retries: number
  startPeriodNs: number
}

/**
 * Everything the engine needs to create one replica's container. Built from a canonical ServiceSpec
 * and the replica's identity by `containerSpecFor` (labels.ts).
 *
 * There is deliberately no restart policy: the engine's own policy is always `no`. The agent
 * restarts containers itself, per the service's policy and with backoff, because (1) only the agent
 * knows whether a committed decision still wants the replica here (an engine restarting a container
 * the cluster moved elsewhere would run it twice), (2) the agent reports restarts and moves the
 * replica after repeated failure, which needs every restart to go through it, and (3) a statically
 * stable agent must see every exit to report it.
 */
export interface ContainerSpec {
  name: string
  image: string
  /** argv replacing the image's CMD; null keeps the image's. */
  command: string[] | null
  /** argv replacing the image's ENTRYPOINT; null keeps the image's. */
  entrypoint: string[] | null
  env: Record<string, string>
  workingDir: string | null
  user: string | null
  ports: PortBinding[]
  /** Memory limit in bytes; null: none. */
  memoryBytes: number | null
  /** CPU limit in billionths of a core (Docker's NanoCpus); null: none. */
  nanoCpus: number | null
  /** Process count limit; null: none. */
  pidsLimit: number | null
  network: 'bridge' | 'host' | 'none'
  mounts: MountSpec[]
  /** Always includes the Skein labels (labels.ts). */
  labels: Record<string, string>
  /** null leaves the image's own healthcheck as it is. */
  healthcheck: EngineHealthcheck | null
}

/** A container's state, in Docker's words. */
export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead'

/** A container's health: `none` when it has no healthcheck. */
export type HealthStatus = 'none' | 'starting' | 'healthy' | 'unhealthy'

/** What the runtime reports about one container. Times are epoch milliseconds. */
export interface ContainerInfo {
  id: string
  name: string
  image: string
  labels: Record<string, string>
  state: ContainerState
  /** Exit code of the last run; null while it never ran or is running. */
  exitCode: number | null
  /** Start of the current (or last) run; null if never started. */
  startedAt: number | null
  /** End of the last run; null if running or never started. */
  finishedAt: number | null
  health: HealthStatus
  /**
   * Restarts made by the engine itself. Always 0 under Skein's `no` policy (a `start` of an exited
   * container is not counted by Docker); the agent counts its own restarts.
   */
  restartCount: number
  /** Killed for running out of memory in the last run. */
  oomKilled: boolean
  ports: PortBinding[]
  /**
   * The container's IP address on its network while it runs (Docker's NetworkSettings); null when
   * it is not running or has no address of its own (network `host` or `none`). The agent probes
   * http/tcp healthchecks there.
   */
  ip: string | null
}

/** The status of the first progress report of a pull, sent before the engine is asked. */
export const PULL_STARTED = 'pulling'

/**
 * Progress of an image pull, in Docker's words. The first report of a pull is `{ status: 'pulling' }`
 * (sent before the engine is asked), then the engine's: `Pulling fs layer`, `Downloading` (with
 * current/total bytes), `Download complete`, `Extracting`, `Pull complete` or `Already exists` per layer.
 */
export interface PullProgress {
  image: string
  status: string
  /** Layer id, when the event concerns one layer. */
  layer?: string
  current?: number
  total?: number
}

/** One line of a container's output. */
export interface LogLine {
  stream: 'stdout' | 'stderr'
  /** Epoch milliseconds, as the engine stamped it. */
  time: number
  /** The line, without its newline. */
  text: string
}

/** A container event, for level-triggered wake-ups (never the source of truth: list() is). */
export interface ContainerEvent {
  action: 'create' | 'start' | 'die' | 'oom' | 'health_status' | 'destroy'
  id: string
  name: string
  labels: Record<string, string>
  /** Epoch milliseconds. */
  time: number
  /** For `die`. */
  exitCode?: number
  /** For `health_status`. */
  health?: HealthStatus
}

/** A one-shot resource sample. */
export interface ContainerStats {
  /** Percent of one core (200 means two cores busy). */
  cpuPercent: number
  memoryBytes: number
}

/** Options shared by the async calls. */
export interface CallOptions {
  signal?: AbortSignal
}

/** The container runtime interface. */
export interface ContainerRuntime {
  /** Answers when the engine is reachable; throws `engine-unavailable` otherwise. */
  ping(opts?: CallOptions): Promise<void>
  /**
   * Makes sure the image is present: pulls it when missing. Throws `image-unavailable` when it cannot
   * be had. `onProgress` is called only when a pull starts (first with status `pulling`).
   */
  ensureImage(ref: string, opts?: CallOptions & { onProgress?: (p: PullProgress) => void }): Promise<void>
  /** Creates a container (not started); returns its id. Throws `container-name-conflict` if the name is taken. */
  create(spec: ContainerSpec, opts?: CallOptions): Promise<string>
  /** Starts a created or exited container. Starting a running container does nothing. */
  start(id: string, opts?: CallOptions): Promise<void>
  /** Sends SIGTERM, waits up to `graceMs`, then kills. Stopping a stopped container does nothing. */
  stop(id: string, opts?: CallOptions & { graceMs?: number }): Promise<void>
  /** Removes a container, running or not (forced; its named volumes stay). Removing a missing one does nothing. */
  remove(id: string, opts?: CallOptions): Promise<void>
  /** Containers (running or not) carrying every given label (`{ key: value }`; value `''` matches any value). */
  list(opts?: CallOptions & { labels?: Record<string, string> }): Promise<ContainerInfo[]>
  /** One container by id or name. Throws `container-not-found`. */
  inspect(id: string, opts?: CallOptions): Promise<ContainerInfo>
  /** The container's output: the last `tail` lines, then (with `follow`) new lines until aborted or the container stops. */
  logs(id: string, opts?: CallOptions & { tail?: number; follow?: boolean }): AsyncIterable<LogLine>
  /** One CPU and memory sample. */
  stats(id: string, opts?: CallOptions): Promise<ContainerStats>
  /** Container events from now on, optionally only for containers carrying the given labels, until aborted. */
  events(opts?: CallOptions & { labels?: Record<string, string> }): AsyncIterable<ContainerEvent>
}
