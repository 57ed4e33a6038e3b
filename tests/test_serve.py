"""`manage.py serve`'s embedded worker (the worker thread of `make run`): it runs jobs and
reports itself like any other worker, so the operations page shows it."""

import time

import pytest

from generation.models import Job
from gpu_workers.management.commands.serve import EMBEDDED_HOSTNAME, embedded_worker_start
from gpu_workers.models import WorkerHeartbeat

from .conftest import SMALL_REQUEST, client_for, page_text
from .test_ops_access import staff  # noqa: F401 (fixture)

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def embedded_worker(transactional_db, queue_prefix, settings):
    settings.FRAMECAST_HEARTBEAT_SECONDS = 0.2
    worker = embedded_worker_start()
    yield worker
    worker.stop(in_sighandler=False)  # sends worker_shutdown: the heartbeat stops too
    from celery.app import trace

    trace.reset_worker_optimizations(worker.app)  # this process goes on running tests


def test_the_embedded_worker_runs_a_job_and_heartbeats(embedded_worker, alice_client, staff):  # noqa: F811
    deadline = time.monotonic() + 120
    while not WorkerHeartbeat.objects.filter(hostname=EMBEDDED_HOSTNAME).exists():
        assert time.monotonic() < deadline, "the embedded worker never reported"
        time.sleep(0.1)
    operations = page_text(client_for(staff).get("/staff/operations/"))
    assert "No worker has reported" not in operations and EMBEDDED_HOSTNAME in operations

    # Counted per process: this test process may have run jobs before (in other tests).
    done_before = WorkerHeartbeat.objects.get(hostname=EMBEDDED_HOSTNAME).jobs_done
    assert alice_client.post("/", SMALL_REQUEST).status_code == 302
    job = Job.objects.get()
    while not WorkerHeartbeat.objects.filter(
        hostname=EMBEDDED_HOSTNAME, jobs_done=done_before + 1, current_job_id=None
    ).exists():
        assert time.monotonic() < deadline, f"the job is {Job.objects.get(pk=job.pk).state}"
        time.sleep(0.1)
    # The worker is free once it has denoised; its finisher thread may still be storing.
    while not Job.objects.get(pk=job.pk).is_terminal:
        assert time.monotonic() < deadline, "the job never ended"
        time.sleep(0.1)
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED and job.worker == EMBEDDED_HOSTNAME
    beat = WorkerHeartbeat.objects.get(hostname=EMBEDDED_HOSTNAME)
    assert (beat.pool, beat.device) == (job.pool, "cpu")
