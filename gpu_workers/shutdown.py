"""Preemption-safe shutdown. On SIGTERM (a rolling deploy, a spot reclaim, an autoscaler
scaling in) Celery's warm shutdown lets the task in hand run on, takes no new message, and
sends `worker_shutting_down` (gpu_workers.tasks records the moment here). The runner then
asks, at each denoising step, whether the job will be stored within
FRAMECAST_SHUTDOWN_GRACE_SECONDS of that moment; if not, it stops at that step boundary and
hands the job back to the queue (generation.services.job_requeue_preempted).

The pod's (or the spot notice's) grace must cover FRAMECAST_SHUTDOWN_GRACE_SECONDS plus one
denoising step plus the exit: Kubernetes' default terminationGracePeriodSeconds of 30 s
fits the default grace of 20 s for steps of a few seconds.

Set from a signal handler: only plain assignments here, no locks, no I/O."""

import time

from django.conf import settings


class _State:
    requested_at: float | None = None  # time.monotonic() of the first shutdown signal
    cold = False  # SIGQUIT / a second Ctrl+C: no grace at all


state = _State()


def request(*, cold: bool = False) -> None:
    if state.requested_at is None:
        state.requested_at = time.monotonic()
    state.cold = state.cold or cold


def requested() -> bool:
    """Whether this worker was told to stop (it must then take no new job)."""
    return state.requested_at is not None or _celery_stopping()


def _celery_stopping() -> bool:
    # Celery sets these to the exit code, which is 0 for a warm shutdown: compare with None.
    from celery.worker import state as celery_state

    return celery_state.should_stop not in (None, False) or celery_state.should_terminate not in (None, False)


def seconds_left() -> float | None:
    """Seconds of the shutdown grace that remain (None: no shutdown asked; 0: none left)."""
    if not requested():
        return None
    if state.requested_at is None:  # Celery knows, but the signal did not reach us
        request()
    if state.cold:
        return 0.0
    return max(0.0, settings.FRAMECAST_SHUTDOWN_GRACE_SECONDS - (time.monotonic() - state.requested_at))


def finishes_in_time(seconds_needed: float) -> bool:
    """Whether work needing `seconds_needed` more seconds ends within the grace (True
    when no shutdown was asked)."""
    left = seconds_left()
    return left is None or seconds_needed <= left


def reset() -> None:
    """Forget a shutdown request (tests; a worker thread that is started again)."""
    state.requested_at, state.cold = None, False
