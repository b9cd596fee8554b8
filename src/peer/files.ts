import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import { SkeinError, errorMessage } from '../core/errors.ts'

/** Small file helpers for the data dir: atomic private writes and reads with clear errors. */

/** The errno code of a Node error (`ENOENT`, `EACCES`, ...), if any. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined
}

/** A SkeinError for a failed file operation on `path` in the data dir `dir`. */
export function fsError(dir: string, path: string, err: unknown, doing: string): SkeinError {
  const code = errnoCode(err)
  const hint = 'run skein as the user that owns the data dir (sudo?), or pass --data-dir'
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return new SkeinError('data-dir-unreadable', `cannot ${doing} ${path}: permission denied`, { hint, cause: err })
    case 'ENOTDIR':
      return new SkeinError('data-dir-invalid', `cannot ${doing} ${path}: ${dir} or one of its parents is not a directory`, { hint: 'pass --data-dir with a directory path', cause: err })
    case 'EROFS':
      return new SkeinError('data-dir-readonly', `cannot ${doing} ${path}: the file system is read-only`, { hint: 'pass --data-dir on a writable disk', cause: err })
    case 'ENOSPC':
      return new SkeinError('disk-full', `cannot ${doing} ${path}: no space left on the device`, { cause: err })
    default:
      return new SkeinError('data-dir-error', `cannot ${doing} ${path}: ${errorMessage(err)}`, { cause: err })
  }
}

/** The contents of a file, or undefined if it does not exist. Other errors become SkeinErrors. */
export function readIfExists(dir: string, path: string): Buffer | undefined {
  try {
    return readFileSync(path)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined
    throw fsError(dir, path, err, 'read')
  }
}

/**
 * Write a file atomically and durably: a temporary file with `mode`, fsync, rename over the
 * target, fsync the directory. A crash leaves either the old or the new content, never half.
 */
export function writeAtomic(dir: string, path: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${dirname(path)}/.${basename(path)}.tmp-${process.pid}`
  try {
    const fd = openSync(tmp, 'w', mode)
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
    fsyncDir(dirname(path))
  } catch (err) {
    rmSync(tmp, { force: true })
    throw fsError(dir, path, err, 'write')
  }
}

function fsyncDir(dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    // Some file systems do not support fsync on directories; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** True if group or others may read or write the file (so a secret in it is exposed). */
export function isExposed(path: string): boolean {
  try {
    return (statSync(path).mode & 0o077) !== 0
  } catch {
    return false
  }
}
