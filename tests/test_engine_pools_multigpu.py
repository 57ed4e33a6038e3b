"""A pool of several GPUs per worker (gpus_per_worker, gpu_workers/multigpu.py), launched as
production launches it: `torchrun --nproc-per-node 2 -m gpu_workers.multigpu ...`.

On this machine's CPUs the ranks talk over gloo, and diffusers' context parallelism
cannot run there (diffusers 0.42 resolves each rank's device as rank modulo the number of
accelerators, 0 on a CPU: ZeroDivisionError), so these tests run the launch and the
rank-0 protocol with the tiny model and no split attention: rank 0 is the pool's only
Celery consumer; rank 1 runs each of its denoising calls in step with it, stops at the
same step on a cancel, and reports a digest of its frames, which must equal rank 0's."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from generation.models import Job
from generation.params import JobParams
from generation.pools import queue_name
from generation.services import job_cancel, job_submit

from .conftest import _database_url, on_plan
from .processes import REPO, free_port, group_alive, stop

pytestmark = [pytest.mark.services, pytest.mark.slow]
S = Job.State


def duo_pools(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "pools.toml"
    path.write_text(f"""
[[pools]]
name = "duo"
gpu = "2 × CPU (tests)"
price_per_gpu_hour = 0.1
models = ["framecast-tiny"]
gpus_per_worker = 2
{extra}
""")
    return path


def params(**overrides) -> JobParams:
    base = dict(model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=3, fps=8, guidance=5.0,
                width=64, height=64, num_frames=9, steps=4)
    return JobParams(**{**base, **overrides})


@pytest.fixture
def worker_env(settings, tmp_path, data_dirs, queue_prefix, tiny_model, transactional_db):
    settings.FRAMECAST_POOLS_FILE = duo_pools(tmp_path)
    return {
        **os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": _database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(data_dirs["MEDIA_ROOT"]), "FRAMECAST_MODELS_DIR": str(data_dirs["FRAMECAST_MODELS_DIR"]),
        "FRAMECAST_QUEUE_PREFIX": queue_prefix, "SECRET_KEY": settings.SECRET_KEY,
        "FRAMECAST_POOLS_FILE": str(settings.FRAMECAST_POOLS_FILE),
    }


CELERY = ["-A", "config", "worker", "--pool", "solo", "--concurrency", "1", "--without-gossip", "--without-mingle",
          "--loglevel", "INFO"]


def test_a_two_rank_worker_runs_jobs_with_both_ranks_in_step(worker_env, alice, tmp_path):
    on_plan(alice.personal_team, "pro")
    first = job_submit(team=alice.personal_team, user=alice, params=params())
    log = tmp_path / "duo.log"
    group = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
         "--master-port", str(free_port()), "-m", "gpu_workers.multigpu", *CELERY, "-Q", queue_name("duo"),
         "--hostname", "duo@%h"],
        cwd=REPO, env=worker_env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not Job.objects.get(pk=first.pk).is_terminal:
            assert time.monotonic() < deadline and group.poll() is None, log.read_text()[-4000:]
            time.sleep(0.2)
        first.refresh_from_db()
        assert first.state == S.SUCCEEDED and first.worker.startswith("duo@"), first.error_detail
        text = log.read_text()
        digest = re.search(r"2 ranks made the same 9 frames \((\w+)\)", text)
        assert digest, text[-4000:]
        assert f"Rank 1: call 0 done ({digest[1]})" in text

        # A cancel stops both ranks at the same step; the next job runs on both again.
        long = job_submit(team=alice.personal_team, user=alice, params=params(width=192, height=192, num_frames=33,
                                                                             steps=40, seed=4))
        while Job.objects.get(pk=long.pk).progress_step < 2:
            assert time.monotonic() < deadline and group.poll() is None, log.read_text()[-4000:]
            time.sleep(0.05)
        job_cancel(long.pk)
        after = job_submit(team=alice.personal_team, user=alice, params=params(seed=5))
        while not Job.objects.get(pk=after.pk).is_terminal:
            assert time.monotonic() < deadline and group.poll() is None, log.read_text()[-4000:]
            time.sleep(0.2)
        assert Job.objects.get(pk=after.pk).state == S.SUCCEEDED
        text = log.read_text()
        assert "Rank 1: call 1 done (cancelled)" in text and "Rank 1: call 2 done (" in text, text[-4000:]
        assert not Job.objects.get(pk=long.pk).video
    finally:
        # SIGTERM to the group (what a container stop sends): torchrun ends its ranks and exits
        # (non-zero: it reports the signal), leaving no process behind.
        stop(group, timeout=60)
        print(log.read_text()[-6000:])
    assert not group_alive(group.pid)


def test_a_worker_of_a_multi_gpu_pool_started_without_torchrun_refuses(worker_env):
    result = subprocess.run([sys.executable, "-m", "celery", *CELERY, "-Q", queue_name("duo")], cwd=REPO,
                            env=worker_env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert ("Pool 'duo' runs each job on 2 GPUs: start its worker with `torchrun --nproc-per-node 2 -m "
            "gpu_workers.multigpu -A config worker -Q gpu.duo --pool solo` (this worker has 1 rank(s)).") in result.stderr


def test_context_parallelism_is_refused_on_a_worker_without_gpus(worker_env, tmp_path, settings):
    path = duo_pools(tmp_path, "context_parallel = { ulysses_degree = 2 }")
    group = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
         "--master-port", str(free_port()), "-m", "gpu_workers.multigpu", *CELERY, "-Q", queue_name("duo")],
        cwd=REPO, env={**worker_env, "FRAMECAST_POOLS_FILE": str(path)}, capture_output=True, text=True, timeout=180,
    )
    assert group.returncode != 0
    assert ("Pool 'duo' splits attention over GPUs (context_parallel): diffusers runs context parallelism on CUDA "
            "GPUs only, and this worker has none.") in group.stdout + group.stderr
