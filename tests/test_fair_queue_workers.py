"""Fair queues with real PostgreSQL, Redis and two Celery worker processes: a team that
queued 50 jobs does not make another team's first job wait behind them."""

import time

import pytest

from generation.models import Job
from generation.services import job_submit

from .test_fair_queue import bulk_plan, params, team_of

S = Job.State


@pytest.mark.services
@pytest.mark.slow
def test_a_teams_one_job_starts_within_two_claims_of_another_teams_fifty(transactional_db, start_worker):
    plan = bulk_plan()
    a, b = team_of("a@example.com", plan), team_of("b@example.com", plan)
    a_jobs = [job_submit(team=a.personal_team, user=a, params=params(width=64, height=48)) for _ in range(50)]
    start_worker("w1"), start_worker("w2")
    deadline = time.monotonic() + 120
    while Job.objects.filter(team=a.personal_team, started_at__isnull=False).count() < 2:
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(0.05)

    b_job = job_submit(team=b.personal_team, user=b, params=params(width=64, height=48))
    while (b_job := Job.objects.get(pk=b_job.pk)).started_at is None:
        assert time.monotonic() < deadline, "B's job never started"
        time.sleep(0.05)

    a_started = Job.objects.filter(pk__in=[job.pk for job in a_jobs], started_at__isnull=False)
    claimed_between = a_started.filter(started_at__gt=b_job.created_at, started_at__lt=b_job.started_at).count()
    assert claimed_between <= 1, f"{claimed_between} of A's jobs started after B submitted and before B's"
    assert a_started.count() <= 10, "B's job should not have waited behind A's queue"
    assert Job.objects.filter(team=a.personal_team, state=S.QUEUED).count() >= 40
