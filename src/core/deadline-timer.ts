import type { Clock } from './clock.ts'

/**
 * One timer that a shell re-arms at its pure core's next deadline. Arming for a later time than
 * the one already pending keeps the earlier one; arming earlier replaces it. Unref'd: it never
 * keeps the process alive on its own.
 */
export interface DeadlineTimer {
  /** Fire at `due` (clock ms), unless a timer is already set to fire no later than that. */
  arm(due: number): void
  cancel(): void
}

export function deadlineTimer(clock: Clock, fire: () => void): DeadlineTimer {
  let timer: NodeJS.Timeout | undefined
  let timerDue = Number.POSITIVE_INFINITY
  const cancel = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    timerDue = Number.POSITIVE_INFINITY
  }
  return {
    arm(due: number): void {
      if (timer !== undefined && timerDue <= due) return
      cancel()
      timerDue = due
      timer = setTimeout(() => {
        timer = undefined
        timerDue = Number.POSITIVE_INFINITY
        fire()
      }, Math.max(1, due - clock.now()))
      timer.unref()
    },
    cancel,
  }
}
