import { execFileSync } from 'node:child_process'

/**
 * Helpers for tests and benchmarks that use the real Docker engine through the `docker` CLI (the
 * engine the agents use: SKEIN_TEST_DOCKER_HOST, else the default socket).
 */
export const DOCKER_ENV = { DOCKER_HOST: process.env.SKEIN_TEST_DOCKER_HOST ?? 'unix:///var/run/docker.sock' }

/** Run `docker ARGS` and return its trimmed stdout (throws on a non-zero exit). */
export function docker(args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', env: { ...process.env, ...DOCKER_ENV }, timeout: 30_000 }).trim()
}

/** Ids of the containers (running or not) carrying all these labels (`key=value`). */
export function labelled(...labels: string[]): string[] {
  return docker(['ps', '-aq', ...labels.flatMap((l) => ['--filter', `label=${l}`])]).split('\n').filter((s) => s !== '')
}

/** Remove every container carrying all these labels; callers pass labels that name only their own. */
export function removeLabelled(...labels: string[]): void {
  const ids = labelled(...labels)
  if (ids.length > 0) docker(['rm', '-f', ...ids])
}
