"""Recovery without the broker's help: Redis restarts without persistence (the default of
many managed setups, and of a failover) under a backlog of queued jobs, and every wake-up
message is gone. The jobs are on the Job rows all the same: the reaper sends the missing
wake-ups at its next run, and each worker, once woken, claims queued job after queued job
without waiting for a message per job (gpu_workers.runner.run_queue). The drain goes on at
the workers' full speed within two reaper intervals.

Real processes: a private redis-server, two GPU workers, a light worker for the reaper, and
celery beat."""

import contextlib
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from billing.models import CreditEntry, Plan
from generation.models import Job
from generation.pools import queue_name
from generation.services import JobParams, job_submit

from .conftest import _database_url, on_plan
from .processes import free_port, start_process, stop_all

pytestmark = [pytest.mark.services, pytest.mark.slow]

S = Job.State
STALE_SECONDS = 12  # the reaper runs every STALE / 2 = 6 s (config/celery_app.py)
REAP_EVERY = STALE_SECONDS / 2
JOBS = 450
BEFORE_SECONDS = 60  # at most this long before the restart
BEFORE_JOBS = 20  # the restart comes once this many jobs have ended (the rate before it)


class PrivateRedis:
    """A redis-server of this test's own, on loopback, persisting nothing: restart() loses
    every message, as a managed Redis without persistence does when it restarts."""

    def __init__(self, directory):
        self.port, self.directory = free_port(), directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "PrivateRedis":
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()  # a crash or a failover, not a clean shutdown
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@contextlib.contextmanager
def sending_to(url: str):
    """This process's Celery app sends its messages to `url` meanwhile (its pooled producer
    connections are dropped on the way in and out)."""
    from config.celery_app import app

    app.conf.broker_write_url = url
    app._after_fork()
    try:
        yield
    finally:
        app.conf.broker_write_url = None
        app._after_fork()


def finished_between(start, end) -> int:
    return Job.objects.filter(state=S.SUCCEEDED, finished_at__gte=start, finished_at__lt=end).count()


def test_queued_jobs_drain_at_full_speed_after_redis_restarts_without_persistence(
    transactional_db, alice, tiny_model, data_dirs, queue_prefix, tmp_path
):
    broker = PrivateRedis(tmp_path).start()
    # One team's backlog, all queued.
    Plan.objects.filter(slug="business").update(concurrent_jobs=JOBS, backlog=JOBS, max_queued_jobs=JOBS)
    on_plan(alice.personal_team, "business")
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _database_url(connection.settings_dict),
        "REDIS_URL": broker.url,
        "CELERY_BROKER_URL": broker.url,
        "SECRET_KEY": settings.SECRET_KEY,
        "MEDIA_ROOT": str(data_dirs["MEDIA_ROOT"]),
        "FRAMECAST_MODELS_DIR": str(data_dirs["FRAMECAST_MODELS_DIR"]),
        "FRAMECAST_QUEUE_PREFIX": queue_prefix,
        "FRAMECAST_HEARTBEAT_SECONDS": "1",
        "FRAMECAST_HEARTBEAT_STALE_SECONDS": str(STALE_SECONDS),
        # Workers go back to the broker every 2 s (60 s by default), so that the restart
        # finds them waiting on it: the case where lost messages would strand the backlog.
        "FRAMECAST_CLAIM_LOOP_SECONDS": "2",
    }

    def celery(name: str, *args: str) -> subprocess.Popen:
        return start_process([sys.executable, "-m", "celery", "-A", "config", *args], env=env, log=tmp_path / f"{name}.log")

    processes = {}
    try:
        for name in ("w1", "w2"):
            processes[name] = celery(name, "worker", "-Q", queue_name("cpu"), "--pool", "solo", "--concurrency", "1",
                                     "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO")
        processes["light"] = celery("light", "worker", "-Q", f"{queue_prefix}celery", "--concurrency", "1",
                                    "--hostname", "light@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO")
        processes["beat"] = celery("beat", "beat", "-s", str(tmp_path / "beat-schedule"), "--loglevel", "INFO")
        from gpu_workers.models import WorkerHeartbeat

        deadline = time.monotonic() + 120
        while WorkerHeartbeat.objects.filter(hostname__regex=r"^w[12]@", phase="ready").count() < 2:
            assert time.monotonic() < deadline, "the workers did not get ready"
            time.sleep(0.2)

        params = JobParams(model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=0, fps=8,
                           guidance=5.0, width=64, height=48, num_frames=9, steps=4)
        with sending_to(broker.url):
            for n in range(JOBS):
                job_submit(team=alice.personal_team, user=alice, params=params.__class__(**{**params.__dict__, "seed": n}))
        submitted = timezone.now()
        # The drain before the restart, with a wake-up per job: until enough jobs have ended to
        # measure its rate (a fixed wait left too few queued on an idle machine).
        deadline = time.monotonic() + BEFORE_SECONDS
        while Job.objects.filter(state=S.SUCCEEDED, finished_at__gte=submitted).count() < BEFORE_JOBS:
            assert time.monotonic() < deadline, "the workers ended too few jobs before the restart"
            time.sleep(0.1)
        queued_before = Job.objects.filter(state=S.QUEUED).count()
        assert queued_before >= 200, f"only {queued_before} jobs were left queued for the restart"
        broker.restart()
        restarted = timezone.now()
        assert broker.client().llen(queue_name("cpu")) == 0  # every wake-up is gone

        deadline = time.monotonic() + 300
        while Job.objects.exclude(state__in=[S.SUCCEEDED, S.FAILED]).exists():
            assert time.monotonic() < deadline, dict(Job.objects.values_list("state").annotate(n=Count("pk")))
            time.sleep(0.5)
        drained = timezone.now()
    finally:
        results = stop_all(processes, logs=tmp_path)
        broker.stop()

    assert not Job.objects.filter(state=S.FAILED).exists(), list(Job.objects.filter(state=S.FAILED).values_list("error_message"))
    # Each job charged once, nothing left held.
    assert CreditEntry.objects.filter(kind="capture").count() == JOBS

    before = finished_between(submitted, restarted) / (restarted - submitted).total_seconds() * 60
    assert finished_between(submitted, restarted) >= 10, "too few jobs ended before the restart to measure"
    recovered = restarted + timedelta(seconds=2 * REAP_EVERY)
    last = Job.objects.order_by("-finished_at").values_list("finished_at", flat=True).first()
    after = finished_between(recovered, last + timedelta(microseconds=1)) / max((last - recovered).total_seconds(), 1) * 60
    ends = sorted(Job.objects.filter(finished_at__gte=restarted).values_list("finished_at", flat=True))
    pause = max(((b - a).total_seconds() for a, b in zip([restarted, *ends], ends)), default=0)
    print(f"{queued_before} queued at the restart; {before:.0f} jobs/min before it, {after:.0f} jobs/min from two reaper "
          f"intervals ({2 * REAP_EVERY:.0f} s) after it; longest pause without a job ending {pause:.1f} s; "
          f"drained {(drained - restarted).total_seconds():.0f} s after the restart")
    assert after >= 0.5 * before, (before, after)
    assert pause <= 2 * REAP_EVERY + 5, pause
    assert results == {"w1": 0, "w2": 0, "light": 0, "beat": 0}, results
