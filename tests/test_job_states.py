"""The job state machine: transitions are enforced in one place, and a job is claimed once."""

import pytest
from django.db.models.fields.files import FieldFile

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


def test_the_workers_copy_of_its_job_is_the_row_after_each_transition(alice):
    """A worker's transitions write their changes and apply them to its own copy instead of
    reading the row back (services.job_transition `job=`): that copy must be the row."""

    def fields(job):
        values = {field.attname: getattr(job, field.attname) for field in Job._meta.concrete_fields}
        # Files by name; each value with its type (a webhook built from the copy shows 5.0, not 5).
        return {name: value.name if isinstance(value, FieldFile) else (type(value).__name__, value) for name, value in values.items()}

    make_job(alice)
    job = services.job_claim_next("cpu", worker="w1")
    assert fields(job) == fields(Job.objects.get(pk=job.pk))
    job = services.job_start_encoding(job, inference_seconds=1.5, load_seconds=0.25)
    assert fields(job) == fields(Job.objects.get(pk=job.pk))
    job = services.job_succeed(job, video=b"mp4", poster=b"jpg", spritesheet=b"jpg", encode_seconds=0.2)
    stored = Job.objects.get(pk=job.pk)
    assert fields(job) == fields(stored)
    assert stored.gpu_seconds == pytest.approx((stored.finished_at - stored.started_at).total_seconds())


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
        (S.ENCODING, S.RUNNING),
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


@pytest.mark.services
def test_dispatch_failure_fails_the_job_instead_of_leaving_it_queued(transactional_db, alice):
    """Submitted from a web process whose broker is unreachable: the job ends `failed`
    with a message, rather than waiting in `queued` for a worker that will never see it."""
    import subprocess
    import sys
    import textwrap

    from django.db import connection

    from .conftest import REPO, _database_url

    script = textwrap.dedent(
        """
        import django
        django.setup()
        from accounts.models import User
        from generation.services import JobParams, job_submit
        alice = User.objects.get(email="alice@example.com")
        params = JobParams(prompt="p", negative_prompt="", model_name="framecast-tiny", seed=1, width=64,
                           height=64, num_frames=9, fps=8, steps=4, guidance=5.0)
        job_submit(team=alice.personal_team, user=alice, params=params)
        """
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _database_url(connection.settings_dict),
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "SECRET_KEY": "test",
    }
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    job = Job.objects.get()
    assert job.state == S.FAILED
    assert job.error_message == "The job could not be queued; please try again."
    assert "Error" in job.error_detail
