"""Celery tasks run by GPU worker processes.

This module is imported by every process that loads the Celery app (web included, via
autodiscovery), so it must not import torch or diffusers at module level: the heavy
imports happen inside the task, in gpu_workers.runner.
"""

from celery import shared_task, signals
from celery.exceptions import Reject

from core.outages import DATABASE_UNAVAILABLE

from . import heartbeat, shutdown


@shared_task(
    name="gpu_workers.run_next",
    bind=True,
    acks_late=True,
    # A worker killed mid-job puts the message back; the job itself is protected by its
    # claim (a conditional UPDATE), so a redelivery can at worst run the pool's next job.
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_next(self, pool: str) -> None:
    """Run the pool's best queued job, and the next ones while the queue has any (see
    generation.services.job_dispatch and runner.run_queue)."""
    if shutdown.requested():
        # Taken just as the worker was told to stop: the wake-up goes back for another worker.
        raise Reject("the worker is shutting down", requeue=True)
    from .runner import background_finisher, run_queue

    try:
        # The clip is encoded and stored on a background thread while the next job denoises.
        run_queue(pool, worker=self.request.hostname or "worker", finisher=background_finisher())
    except DATABASE_UNAVAILABLE as error:
        # The claim could not run (the runner waited for the database first): the wake-up
        # goes back to the queue, not acknowledged as done, and is taken again.
        raise Reject(repr(error), requeue=True) from error


@shared_task(
    name="gpu_workers.reap_lost_jobs",
    ignore_result=True,
    # The database away: try again in 2, 4, 8 s rather than skip a run (a run is harmless
    # to repeat: every repair is a conditional update).
    autoretry_for=DATABASE_UNAVAILABLE,
    max_retries=3,
    retry_backoff=2,
    retry_jitter=False,
)
def reap_lost_jobs() -> int:
    """Periodic (celery beat): requeue or fail jobs no worker is running any more, move up
    throttled jobs whose slot freed, and wake pools whose queued jobs lack a wake-up."""
    from .reaper import promote_throttled_jobs, wake_idle_pools
    from .reaper import reap_lost_jobs as reap

    reaped = len(reap())
    promote_throttled_jobs()
    wake_idle_pools()
    return reaped


@signals.worker_ready.connect
def _start_heartbeat_and_warm_up(sender=None, **kwargs) -> None:
    """Beat as `warming`, load the pools' models and run one small generation, then beat as
    `ready`. Celery sends worker_ready before its consumer takes its first message, so no job
    is claimed by a cold worker: the first one runs as fast as the second (a job that waits
    meanwhile shows "starting a GPU" in the studio)."""
    consumer = sender
    queues = [queue.name for queue in consumer.task_consumer.queues] if consumer and consumer.task_consumer else []
    heartbeat.start(hostname=consumer.hostname if consumer else "worker", queues=queues, phase="warming")
    from .warmup import warm_up

    warm_up(heartbeat.state.pool.split(","))
    heartbeat.ready()


@signals.worker_shutting_down.connect
def _shutdown_requested(sig=None, how=None, **kwargs) -> None:
    # From Celery's signal handler: record the moment only (gpu_workers.shutdown).
    shutdown.request(cold=how == "Cold")


@signals.worker_shutdown.connect
def _stop_heartbeat(**kwargs) -> None:
    import sys

    runner = sys.modules.get("gpu_workers.runner")  # loaded only if this worker ran a job
    if runner is not None:
        runner.drain_background_finisher()  # the clip being encoded is stored before exit
    from generation import events

    events.flush(timeout=2.0)  # and its `succeeded` event sent (not waiting long for a layer that is down)
    heartbeat.stop()
