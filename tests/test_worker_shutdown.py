"""Preemption-safe shutdown, with real worker processes: on SIGTERM (a rolling deploy, a spot
reclaim, a scale-in) a worker takes no new job; the job in hand finishes if it will within
FRAMECAST_SHUTDOWN_GRACE_SECONDS, else it stops at a step boundary and goes back to the
queue with its attempt recorded, its credit hold and its place in the queue kept."""

import os
import re
import signal
import time

import pytest

from billing.models import BillingAccount, CreditEntry
from generation.models import Job
from generation.services import JobParams, job_submit

pytestmark = [pytest.mark.services, pytest.mark.slow]

S = Job.State


def params(**overrides) -> JobParams:
    base = dict(
        model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=3, fps=8, guidance=5.0,
        width=64, height=64, num_frames=9, steps=4,
    )
    return JobParams(**{**base, **overrides})


def wait_for(condition, *, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def sigterm(process) -> int:
    """What Kubernetes, Docker and a spot reclaim send; returns the exit status."""
    os.killpg(process.pid, signal.SIGTERM)
    return process.wait(60)


def test_sigterm_during_a_long_job_hands_it_back_at_a_step_boundary_and_another_worker_makes_it(
    alice, start_worker, tmp_path
):
    """A 30-step job cannot end within no grace at all: the worker stops at the next step
    boundary and exits cleanly; the job is queued again in its place with its credits still
    held and the preempted attempt recorded; a second worker makes it, and the team is
    debited once, the quoted price, with no charge for the discarded steps."""
    job = job_submit(team=alice.personal_team, user=alice, params=params(width=192, height=192, num_frames=33, steps=30))
    dispatch_key, price = job.dispatch_key, job.price_credits
    # (Every step is stored by default: the test reads the worker's progress from the row.)
    # No grace, so the job cannot end in time however fast this machine's steps are (with 1 s
    # an idle machine finished the whole job first).
    first = start_worker("w1", FRAMECAST_SHUTDOWN_GRACE_SECONDS="0")
    wait_for(lambda: Job.objects.get(pk=job.pk).progress_step >= 2, what="the first worker never got going")
    step_at_sigterm = Job.objects.get(pk=job.pk).progress_step
    assert sigterm(first) == 0

    job.refresh_from_db()
    assert (job.state, job.attempts, job.preemptions, job.worker, job.progress_step) == (S.QUEUED, 1, 1, "", 0)
    assert job.dispatch_key == dispatch_key  # its place in the queue
    assert job.preempted_gpu_seconds > 0  # the discarded steps, recorded for operators
    stopped = re.search(r"handed back to the queue: the worker is shutting down \(stopped after step (\d+) of 30",
                        (tmp_path / "worker-w1.log").read_text())
    assert stopped, "the worker did not say where it stopped"
    assert step_at_sigterm <= int(stopped.group(1)) <= step_at_sigterm + 2  # at the next step boundary or so
    account = BillingAccount.objects.get(team=alice.personal_team)
    assert (account.available, account.held_credits) == (100 - price, price)  # the hold stays, as it was
    assert sorted(CreditEntry.objects.filter(job_id=job.pk).values_list("kind", flat=True)) == ["hold"]

    started_again = time.monotonic()
    start_worker("w2")  # its wake-up was sent again with the requeue
    wait_for(lambda: Job.objects.get(pk=job.pk).state == S.SUCCEEDED, what=f"job is {Job.objects.get(pk=job.pk).state}")
    job.refresh_from_db()
    assert job.worker.startswith("w2@") and (job.attempts, job.preemptions) == (2, 1)
    assert sorted(CreditEntry.objects.filter(job_id=job.pk).values_list("kind", flat=True)) == ["capture", "hold"]
    account.refresh_from_db()
    assert (account.available, account.held_credits) == (100 - price, 0)
    # The cost record is the attempt that made the video, not the one thrown away.
    assert job.gpu_seconds <= time.monotonic() - started_again


def test_sigterm_during_a_short_job_lets_it_finish_and_takes_no_new_job(alice, bob, start_worker, tmp_path):
    """A job that will be stored within the grace (20 s by default) is finished and stored
    before the worker exits; the job queued behind it is not started, and stays queued for
    the next worker."""
    short = job_submit(team=alice.personal_team, user=alice, params=params(width=128, height=128, num_frames=17, steps=20))
    behind = job_submit(team=bob.personal_team, user=bob, params=params(seed=4))
    worker = start_worker("w1")
    wait_for(lambda: Job.objects.get(pk=short.pk).progress_step >= 2, what="the worker never got going")
    assert Job.objects.get(pk=short.pk).progress_step < 20, "the job ended before the test could stop its worker"
    assert sigterm(worker) == 0

    short.refresh_from_db()
    assert (short.state, short.attempts, short.preemptions) == (S.SUCCEEDED, 1, 0)
    assert short.video
    assert "handed back to the queue" not in (tmp_path / "worker-w1.log").read_text()
    behind.refresh_from_db()
    assert (behind.state, behind.attempts) == (S.QUEUED, 0)
