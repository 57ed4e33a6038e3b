"""The operations page: queue depth and waits per pool and tier, running jobs, worker
health, failure reasons ranked and jobs per hour, on a hand-made set of jobs and workers."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import Job
from gpu_workers.models import WorkerHeartbeat
from ops import metrics

from .conftest import client_for, page_text
from .test_ops_access import staff  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def job(team, *, state, pool="h100", priority=0, queued_ago=None, started_ago=None, queue_seconds=None, error="",
        finished_ago=None):
    now = timezone.now()
    made = Job.objects.create(
        team=team, prompt="p", seed=1, width=64, height=64, num_frames=9, fps=8, steps=4, guidance=5.0,
        model_name="wan2.1-t2v-1.3b", pool=pool, state=state, priority=priority, error_message=error,
        queued_at=now - queued_ago if queued_ago is not None else None,
        started_at=now - started_ago if started_ago is not None else None, queue_seconds=queue_seconds,
        finished_at=now - finished_ago if finished_ago is not None else None, video="v.mp4" if state == "succeeded" else "",
    )
    return made


@pytest.fixture
def busy_world(alice):
    team = alice.personal_team
    for seconds in (10, 20, 30, 40, 300):  # five Free jobs waiting in h100
        job(team, state="queued", queued_ago=timedelta(seconds=seconds))
    job(team, state="queued", priority=8, queued_ago=timedelta(seconds=5))  # one Pro job
    job(team, state="throttled")
    for wait in (1.0, 2.0, 3.0, 4.0):  # started in the last hour, Free
        job(team, state="running", started_ago=timedelta(minutes=10), queue_seconds=wait)
    job(team, state="succeeded", started_ago=timedelta(hours=3), queue_seconds=99.0)  # too long ago
    for _ in range(3):
        job(team, state="failed", error="The GPU ran out of memory.", finished_ago=timedelta(hours=2))
    job(team, state="failed", error="The worker was lost 3 times.", finished_ago=timedelta(days=1))
    job(team, state="failed", error="Too old to rank.", finished_ago=timedelta(days=8))
    now = timezone.now()
    for host, current, seen in (("gpu-1", "00000000-0000-0000-0000-000000000001", 2), ("gpu-2", None, 3), ("gpu-3", None, 600)):
        WorkerHeartbeat.objects.create(hostname=host, pool="h100", device="cuda", current_job_id=current,
                                       started_at=now - timedelta(hours=1), last_seen_at=now - timedelta(seconds=seen))
    return team


def test_queues_per_pool_and_tier_with_wait_percentiles(busy_world):
    rows = {(q.pool, q.priority): q for q in metrics.operations().queues}
    free, pro = rows[("h100", 0)], rows[("h100", 8)]
    assert (free.tier, pro.tier) == ("Free", "Pro")
    assert (free.queued, free.throttled, pro.queued) == (5, 1, 1)
    assert round(free.waiting_p50) == 30 and round(free.waiting_p95) == 300
    assert (free.started_last_hour, free.wait_p50, free.wait_p95) == (4, 2.0, 4.0)


def test_running_workers_failures_and_jobs_per_hour(busy_world):
    ops = metrics.operations()
    assert ops.running_count == 4 and ops.running_by_pool == {"h100": 4}
    assert ops.worker_counts == {"h100": {"healthy": 1, "busy": 1, "warming": 0, "stopping": 0, "stale": 1, "running": 4}}
    assert [(f["error_message"], f["n"]) for f in ops.failures] == [
        ("The GPU ran out of memory.", 3), ("The worker was lost 3 times.", 1)]
    assert len(ops.jobs_per_hour) == 24 and sum(n for _, n in ops.jobs_per_hour) == Job.objects.count()


def test_staff_see_the_operations_page(busy_world, staff):
    text = page_text(client_for(staff).get("/staff/operations/"))
    assert "The GPU ran out of memory." in text and "gpu-3" in text and "Running jobs (4)" in text
    assert text.count("<rect") == 24
    assert re.search(r"5 min 0\d s", text), "the oldest Free job's wait, in minutes"
