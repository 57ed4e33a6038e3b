"""The job state machine: transitions are enforced in one place, and a job is claimed once."""

import pytest

from generation import services
from generation.models import Job

from .test_tenant_isolation import make_job

pytestmark = pytest.mark.django_db

S = Job.State


def test_happy_path_stamps_each_state(alice):
    job = make_job(alice)
    job = services.job_start(job.id, worker="w1")
    assert (job.state, job.worker, job.attempts) == (S.RUNNING, "w1", 1)
    job = services.job_start_encoding(job, inference_seconds=1.5)
    assert job.state == S.ENCODING and job.encoding_at >= job.started_at
    job = services.job_succeed(job, video=b"mp4", poster=b"jpg", encode_seconds=0.2)
    assert job.state == S.SUCCEEDED and job.finished_at >= job.encoding_at
    assert job.video.read() == b"mp4"


def test_a_job_is_claimed_once(alice):
    """A redelivered message (late ack, visibility timeout) must not run the job twice."""
    job = make_job(alice)
    services.job_start(job.id, worker="w1")
    with pytest.raises(services.InvalidTransition, match="cannot go from 'running' to 'running'"):
        services.job_start(job.id, worker="w2")
    job.refresh_from_db()
    assert (job.worker, job.attempts) == ("w1", 1)


@pytest.mark.parametrize(
    "start, target",
    [
        (S.QUEUED, S.ENCODING),
        (S.QUEUED, S.SUCCEEDED),
        (S.RUNNING, S.SUCCEEDED),
        (S.RUNNING, S.QUEUED),
        (S.SUCCEEDED, S.FAILED),
        (S.FAILED, S.RUNNING),
        (S.CANCELLED, S.RUNNING),
    ],
)
def test_disallowed_transitions_are_refused(alice, start, target):
    job = make_job(alice, state=start, video="v.mp4" if start == S.SUCCEEDED else "")
    with pytest.raises(services.InvalidTransition):
        services.job_transition(job.id, target)
    job.refresh_from_db()
    assert job.state == start


def test_failing_a_finished_job_changes_nothing(alice):
    job = make_job(alice, state=S.SUCCEEDED, video="v.mp4")
    assert services.job_fail(job.id, reason="late failure") is None
    job.refresh_from_db()
    assert job.state == S.SUCCEEDED and job.error_message == ""


def test_result_of_a_job_cancelled_meanwhile_is_not_kept(alice, data_dirs):
    job = services.job_start(make_job(alice).id, worker="w1")
    job = services.job_start_encoding(job, inference_seconds=1.0)
    services.job_transition(job.id, S.CANCELLED)
    with pytest.raises(services.InvalidTransition):
        services.job_succeed(job, video=b"mp4", poster=b"jpg", encode_seconds=0.1)
    leftovers = [path for path in data_dirs["MEDIA_ROOT"].rglob(f"{job.id}*") if path.is_file()]
    assert leftovers == []


def test_database_refuses_an_unknown_state(alice):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        make_job(alice, state="exploded")


def test_dispatch_failure_fails_the_job_instead_of_leaving_it_queued(alice, settings):
    from config.celery_app import app

    job = make_job(alice)
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    app.conf.broker_connection_retry = False
    app.conf.broker_transport_options = {"max_retries": 0}
    try:
        app.pool.force_close_all()
        app._pool = None
        services.job_dispatch(job)
    finally:
        app.conf.broker_url = original
        app._pool = None
    job.refresh_from_db()
    assert job.state == S.FAILED
    assert "could not be queued" in job.error_message
