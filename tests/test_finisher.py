"""A worker's finisher with several threads (FRAMECAST_FINISHER_THREADS): turbo clips
denoise faster than one thread watermarks and encodes them, so several are finished at
once, each stored once, none reaped while its worker finishes it, all stored at shutdown."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from generation import services
from generation.models import Job
from gpu_workers import heartbeat, runner
from gpu_workers.encode import probe_mp4
from gpu_workers.models import WorkerHeartbeat
from gpu_workers.reaper import reap_lost_jobs

from .test_tenant_isolation import make_job

WAIT = 60  # seconds before a test gives up on a thread (never reached when things work)


class HeldFinishing:
    """Patches runner._finish: each clip checks in at a barrier with the test (so the test
    knows that all of them are being finished at the same time), then waits for release."""

    def __init__(self, monkeypatch, request, clips: int) -> None:
        self.together = threading.Barrier(clips + 1, timeout=WAIT)
        self.release = threading.Event()
        self.stored: list = []
        real_finish, real_succeed = runner._finish, services.job_succeed

        def held(job, frames):
            self.together.wait()  # breaks (and the job fails) unless all clips are here at once
            assert self.release.wait(WAIT), "the test never released the finishing"
            real_finish(job, frames)

        def counted(job, **kwargs):
            self.stored.append(job.pk)
            return real_succeed(job, **kwargs)

        monkeypatch.setattr(runner, "_finish", held)
        monkeypatch.setattr(services, "job_succeed", counted)
        request.addfinalizer(self.release.set)  # a failed test leaves no thread waiting
        request.addfinalizer(self.together.abort)


@pytest.fixture
def beating(monkeypatch):
    """This process as a worker named w1 whose heartbeat row is written on demand (beat())."""
    monkeypatch.setattr(heartbeat.state, "hostname", "w1")
    monkeypatch.setattr(heartbeat.state, "pool", "cpu")
    monkeypatch.setattr(heartbeat.state, "started_at", timezone.now() - timedelta(hours=1))
    monkeypatch.setattr(heartbeat.state, "finishing_job_ids", [])
    monkeypatch.setattr(heartbeat.state, "current_job_id", None)


def two_jobs(alice):
    return [make_job(alice, width=64, height=32, num_frames=5, steps=2, prompt=p) for p in ("first", "second")]


def assert_succeeded_once(jobs, stored):
    assert sorted(stored, key=str) == sorted((job.pk for job in jobs), key=str)  # each stored exactly once
    for job in jobs:
        job.refresh_from_db()
        assert job.state == Job.State.SUCCEEDED, job.error_detail
        assert probe_mp4(job.video.read())["frames"] == 5


@pytest.mark.django_db(transaction=True)
def test_two_finisher_threads_finish_two_clips_at_once_and_the_reaper_leaves_both_alone(
    alice, tiny_model, monkeypatch, beating, request
):
    held = HeldFinishing(monkeypatch, request, clips=2)
    jobs = two_jobs(alice)
    finisher = runner.Finisher(threads=2)

    # The worker hands both clips over and is free for a third job: neither waits for the other.
    assert runner.run_next("cpu", worker="w1", finisher=finisher) == jobs[0]
    assert runner.run_next("cpu", worker="w1", finisher=finisher) == jobs[1]
    held.together.wait()  # both clips are being finished now
    assert finisher.in_flight() == 2
    assert {Job.objects.get(pk=job.pk).state for job in jobs} == {Job.State.ENCODING}

    # Its heartbeat names both; long after their claims, the reaper requeues neither.
    Job.objects.filter(pk__in=[job.pk for job in jobs]).update(started_at=timezone.now() - timedelta(minutes=5))
    heartbeat.beat()
    beat = WorkerHeartbeat.objects.get(hostname="w1")
    assert beat.current_job_id is None
    assert beat.finishing_job_ids == [str(job.pk) for job in jobs]  # in the order handed over
    assert beat.finishing_job_id == jobs[0].pk  # the oldest
    assert reap_lost_jobs() == []
    assert {Job.objects.get(pk=job.pk).state for job in jobs} == {Job.State.ENCODING}

    held.release.set()
    finisher.drain()
    assert_succeeded_once(jobs, held.stored)
    heartbeat.beat()
    assert WorkerHeartbeat.objects.get(hostname="w1").finishing_job_ids == []


@pytest.mark.django_db
def test_a_job_its_worker_no_longer_names_is_still_reaped_while_others_are_finished(alice, beating):
    """Naming several finishing jobs protects those, not every job the worker claimed."""
    def running_job():
        return make_job(alice, state=Job.State.ENCODING, worker="w1", attempts=1,
                        started_at=timezone.now() - timedelta(minutes=5))

    finishing, abandoned, other = running_job(), running_job(), running_job()
    WorkerHeartbeat.objects.create(
        hostname="w1", pool="cpu", device="cpu", started_at=timezone.now() - timedelta(hours=1),
        last_seen_at=timezone.now(), finishing_job_id=finishing.pk,
        finishing_job_ids=[str(finishing.pk), str(other.pk)],
    )
    assert [job.pk for job in reap_lost_jobs()] == [abandoned.pk]
    assert {Job.objects.get(pk=job.pk).state for job in (finishing, other)} == {Job.State.ENCODING}


@pytest.mark.django_db(transaction=True)
def test_shutdown_stores_every_clip_in_flight(alice, tiny_model, monkeypatch, beating, request):
    held = HeldFinishing(monkeypatch, request, clips=2)
    jobs = two_jobs(alice)
    monkeypatch.setattr(runner, "_finisher", runner.Finisher(threads=2))
    for _ in jobs:
        runner.run_next("cpu", worker="w1", finisher=runner.background_finisher())
    held.together.wait()

    draining = threading.Thread(target=runner.drain_background_finisher)
    draining.start()
    draining.join(0.3)
    assert draining.is_alive()  # the process may not exit while clips are in hand
    held.release.set()
    draining.join(WAIT)
    assert not draining.is_alive()
    assert runner.background_finisher().in_flight() == 0
    assert heartbeat.finishing_job_ids() == []
    assert_succeeded_once(jobs, held.stored)


def test_the_denoiser_is_held_back_when_every_thread_has_a_clip():
    """At most `threads` clips in memory: the next hand-over waits for a free thread."""
    finisher = runner.Finisher(threads=2)
    release, started = threading.Event(), []

    def work(name):
        def run():
            started.append(name)
            assert release.wait(WAIT)
        return run

    finisher.submit(work("a"))
    finisher.submit(work("b"))
    third = threading.Thread(target=finisher.submit, args=(work("c"),))
    third.start()
    third.join(0.3)
    assert third.is_alive() and "c" not in started  # waiting for a thread, its frames not queued
    release.set()
    third.join(WAIT)
    finisher.drain()
    assert sorted(started) == ["a", "b", "c"] and finisher.in_flight() == 0


def test_finisher_threads_come_from_the_setting(settings, monkeypatch):
    settings.FRAMECAST_FINISHER_THREADS = "3"
    assert runner.Finisher().threads == 3
    settings.FRAMECAST_FINISHER_THREADS = "auto"
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 16)
    assert runner.finisher_threads() == 4  # one per 2 cores, at most 4
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 2)
    assert runner.finisher_threads() == 1
