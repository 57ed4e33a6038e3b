"""Celery tasks run by GPU worker processes.

This module is imported by every process that loads the Celery app (web included, via
autodiscovery), so it must not import torch or diffusers at module level: the heavy
imports happen inside the task, in gpu_workers.runner.
"""

from celery import shared_task


@shared_task(name="gpu_workers.run_job", bind=True, acks_late=True, ignore_result=True)
def run_job(self, job_id: str) -> None:
    from .runner import run_job as run

    run(job_id, worker=self.request.hostname or "worker")
