"""Pools whose jobs run on an inference engine of the OpenAI Videos API (SGLang-Diffusion's
shape), tested against a real one: a second Framecast (its /openai/v1) with its own SQLite
database, media and embedded worker, started once for this module. Failure modes an
engine must never show on purpose (500s, hangs, non-videos) come from a small loopback
HTTP server in this process.

The Framecast under test is the usual one (PostgreSQL, Redis, a real Celery worker
process of the engine pool); only its pools file differs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from billing.models import BillingAccount
from generation import pools
from generation.models import Job
from generation.params import JobParams
from generation.pools import queue_name
from generation.services import job_cancel, job_submit
from gpu_workers.encode import probe_mp4
from gpu_workers.reaper import reap_lost_jobs
from safety import provenance

from .conftest import on_plan, websocket_connect
from .processes import REPO, get, start_server, stop

S = Job.State
KEY_ENV = "FC_TEST_ENGINE_KEY"
# The engine's own settings come from its data folder alone, never from this test run's.
NOT_FOR_THE_ENGINE = (
    "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "FRAMECAST_QUEUE_PREFIX", "MEDIA_ROOT", "FRAMECAST_POOLS_FILE",
    "FRAMECAST_MODELS_DIR", KEY_ENV,
)
SETUP = """
from accounts.api_keys import apikey_create
from accounts.models import Membership
from accounts.services import user_signup
from billing.ledger import account_for_team, subscription_renew
from billing.models import BillingAccount, Plan
user = user_signup(email="worker@engine.example", password="correct horse battery")
team = user.personal_team
account_for_team(team)
BillingAccount.objects.filter(team=team).update(plan=Plan.objects.get(slug="business"))
subscription_renew(team, reference="engine-test", period_end=None)
_, secret = apikey_create(membership=Membership.objects.get(user=user, team=team), name="framecast worker")
print("KEY=" + secret)
"""


def params(**overrides) -> JobParams:
    base = dict(model_name="framecast-tiny", prompt="a red ball bouncing", negative_prompt="", seed=7, fps=8,
                guidance=5.0, width=128, height=128, num_frames=17, steps=20)
    return JobParams(**{**base, **overrides})


# --- the engine Framecast ---------------------------------------------------------------


class EngineServer:
    def __init__(self, process: subprocess.Popen, base: str, key: str, log: Path):
        self.process, self.base, self.key, self.log = process, base, key, log

    @property
    def api(self) -> str:
        return f"{self.base}/openai/v1"

    def video(self, engine_id: str) -> tuple[int, dict]:
        status, body, _ = get(f"{self.api}/videos/{engine_id}", headers={"Authorization": f"Bearer {self.key}"})
        return status, json.loads(body)

    def videos(self) -> list[dict]:
        status, body, _ = get(f"{self.api}/videos?limit=100", headers={"Authorization": f"Bearer {self.key}"})
        assert status == 200, body
        return json.loads(body)["data"]


def _engine_env(data_dir: Path, models_dir: Path) -> dict:
    env = {name: value for name, value in os.environ.items() if name not in NOT_FOR_THE_ENGINE}
    return {**env, "DJANGO_SETTINGS_MODULE": "config.settings", "FRAMECAST_DATA_DIR": str(data_dir),
            "FRAMECAST_MODELS_DIR": str(models_dir), "SECRET_KEY": "engine-secret-key-for-tests-only-0123456789"}


def _serve(env: dict, log: Path, *, worker: bool, timeout: float = 90) -> tuple[subprocess.Popen, str]:
    # Its own environment only: none of this test run's database, broker or folders.
    return start_server(env, log, timeout=timeout, worker=worker, inherit=False)


@pytest.fixture(scope="module")
def engine_world(tmp_path_factory, data_dirs, tiny_model):
    """Two engine Framecasts from one migrated database: `engine` renders (an embedded
    worker), `stalled` (a copy of its data, no worker) accepts jobs and never starts them."""
    root = tmp_path_factory.mktemp("engine")
    live, stalled = root / "live", root / "stalled"
    live.mkdir()
    env = _engine_env(live, data_dirs["FRAMECAST_MODELS_DIR"])  # the tiny model this run built
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    setup = subprocess.run([sys.executable, "manage.py", "shell", "-c", SETUP], cwd=REPO, env=env, check=True,
                           capture_output=True, text=True)
    key = next(line[4:] for line in setup.stdout.splitlines() if line.startswith("KEY="))
    shutil.copytree(live, stalled)  # the same account and key, its own database from here on
    servers = {}
    try:
        for name, data, worker in (("engine", live, True), ("stalled", stalled, False)):
            log = root / f"{name}.log"
            process, base = _serve(_engine_env(data, data_dirs["FRAMECAST_MODELS_DIR"]), log, worker=worker)
            servers[name] = EngineServer(process, base, key, log)
        yield servers
    finally:
        for name, server in servers.items():
            stop(server.process)
            print(f"--- {name} ---\n{server.log.read_text()[-4000:]}")


def engine_pool_file(tmp_path: Path, base_url: str, **engine) -> Path:
    options = {"poll_seconds": 0.2, "job_timeout_seconds": 120, "read_timeout_seconds": 10, **engine}
    lines = "\n".join(f"{name} = {json.dumps(value)}" for name, value in options.items())
    path = tmp_path / "pools.toml"
    path.write_text(f"""
[[pools]]
name = "engine"
gpu = "CPU behind an engine (tests)"
price_per_gpu_hour = 3.6
models = ["framecast-tiny"]
[pools.engine]
kind = "openai_videos"
base_url = "{base_url}"
api_key_env = "{KEY_ENV}"
model_map = {{ "framecast-tiny" = "framecast-tiny" }}
{lines}
""")
    return path


@pytest.fixture
def engine_pool(settings, tmp_path, start_worker):
    """use(base_url, key, **options): route framecast-tiny to an engine pool at base_url, and
    start a real worker of that pool (with the key in its environment)."""

    def use(base_url: str, key: str = "test-key", *, worker: str = "w1", **options):
        path = engine_pool_file(tmp_path, base_url, **options)
        settings.FRAMECAST_POOLS_FILE = path
        return lambda name=worker: start_worker(name, pool="engine", FRAMECAST_POOLS_FILE=str(path), **{KEY_ENV: key})

    return use


def wait_for(condition, what: str, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def receive_until_terminal(socket, timeout: float = 120) -> list[dict]:
    received, deadline = [], time.monotonic() + timeout
    while True:
        event = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        received.append(event)
        if event["type"] in {"succeeded", "failed", "cancelled"}:
            return received


# --- registry validation ------------------------------------------------------------------


def write_pools(tmp_path: Path, engine: str) -> Path:
    path = tmp_path / "bad-pools.toml"
    path.write_text(f"""
[[pools]]
name = "sglang"
gpu = "H100"
price_per_gpu_hour = 2.69
models = ["framecast-tiny", "framecast-toy"]
{engine}
""")
    return path


@pytest.mark.parametrize("engine, message", [
    ('engine = "tensorrt"', "Pool 'sglang' in {path}: unknown engine 'tensorrt' (known: diffusers, openai_videos)."),
    ('[pools.engine]\nkind = "openai_videos"\nbase_url = "ftp://10.0.0.5/v1"\napi_key_env = "K"\n'
     'model_map = { "framecast-tiny" = "a", "framecast-toy" = "b" }',
     "Pool 'sglang' in {path}: engine.base_url must be an http:// or https:// URL (got 'ftp://10.0.0.5/v1')."),
    ('[pools.engine]\nkind = "openai_videos"\nbase_url = "http://127.0.0.1:30010/v1"\napi_key_env = "K"\n'
     'model_map = { "framecast-tiny" = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" }',
     "Pool 'sglang' in {path}: engine.model_map does not name the engine's model for framecast-toy."),
    ('[pools.engine]\nkind = "openai_videos"\nbase_url = "http://127.0.0.1:30010/v1"\n'
     'model_map = { "framecast-tiny" = "a", "framecast-toy" = "b" }',
     "Pool 'sglang' in {path}: engine.api_key_env must name the environment variable holding the engine's API key."),
    ('gpus_per_worker = 4\ncontext_parallel = { ulysses_degree = 2, ring_degree = 3 }',
     "Pool 'sglang' in {path}: context_parallel ring_degree × ulysses_degree must equal gpus_per_worker (4); "
     "got {{'ulysses_degree': 2, 'ring_degree': 3}}."),
    ('gpus_per_worker = 2\ncontext_parallel = { ulysses = 2 }',
     "Pool 'sglang' in {path}: unknown context_parallel field(s) ulysses (known: ring_degree, ulysses_degree)."),
    ('gpus_per_worker = 2\n[pools.engine]\nkind = "openai_videos"\nbase_url = "http://127.0.0.1:30010/v1"\n'
     'api_key_env = "K"\nmodel_map = { "framecast-tiny" = "a", "framecast-toy" = "b" }',
     "Pool 'sglang' in {path}: gpus_per_worker is for in-process (diffusers) pools; an engine spreads its own GPUs "
     "(e.g. sglang serve --num-gpus)."),
])
def test_an_engine_pool_the_worker_could_not_run_is_refused_at_start(tmp_path, settings, engine, message):
    """The system check (run by every manage.py command and the server) names the pool."""
    settings.FRAMECAST_POOLS_FILE = path = write_pools(tmp_path, engine)
    with pytest.raises(ImproperlyConfigured) as refused:
        pools.all_pools()
    assert str(refused.value) == message.format(path=path)
    errors = pools.check_pools_file()
    assert [(error.id, error.msg) for error in errors] == [
        ("generation.E002", f"The worker pools file cannot be used: {message.format(path=path)}")
    ]
    assert any(error.id == "generation.E002" for error in checks.run_checks())


def test_a_valid_engine_pool_loads_with_its_options(tmp_path, settings):
    settings.FRAMECAST_POOLS_FILE = engine_pool_file(tmp_path, "http://127.0.0.1:30010/v1/", poll_seconds=1.5)
    (pool,) = pools.all_pools()
    assert (pool.engine.kind, pool.engine.base_url, pool.engine.poll_seconds) == (
        "openai_videos", "http://127.0.0.1:30010/v1", 1.5)
    assert pool.engine.engine_model("framecast-tiny") == "framecast-tiny" and not pool.engine.in_process
    assert pools.check_pools_file() == []
    # The shipped file's pools run in process.
    settings.FRAMECAST_POOLS_FILE = REPO / "generation" / "pools.toml"
    assert all(pool.engine.in_process for pool in pools.all_pools())


def test_a_worker_of_an_engine_pool_without_its_key_variable_refuses_to_start(tmp_path, queue_prefix):
    path = engine_pool_file(tmp_path, "http://127.0.0.1:9/v1")
    env = {name: value for name, value in os.environ.items() if name != KEY_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue_name("engine"), "--pool", "solo",
         "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=REPO, env={**env, "FRAMECAST_POOLS_FILE": str(path), "FRAMECAST_QUEUE_PREFIX": queue_prefix},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert (f"Pool 'engine' runs on the engine at http://127.0.0.1:9/v1, but its API key variable {KEY_ENV} "
            "is not set in this worker's environment.") in result.stderr, result.stderr[-3000:]


# --- against the engine Framecast --------------------------------------------------------

@pytest.mark.services
@pytest.mark.slow
def test_a_job_of_an_engine_pool_renders_on_the_engine_with_progress_and_our_watermark(
    engine_world, engine_pool, alice, alice_client, asgi_server
):
    engine = engine_world["engine"]
    start = engine_pool(engine.api, engine.key)
    on_plan(alice.personal_team, "pro")
    job = job_submit(team=alice.personal_team, user=alice, params=params())
    assert job.pool == "engine"

    with websocket_connect(asgi_server, f"/ws/jobs/{job.id}/", alice_client) as socket:
        assert json.loads(socket.recv(timeout=10)) == {"type": "queued"}
        start()
        received = receive_until_terminal(socket)
    types = [event["type"] for event in received]
    assert types[0] == "started" and types[-2:] == ["encoding", "succeeded"], received
    steps = [event["i"] for event in received if event["type"] == "step"]
    # The engine's progress (0-100 %) as Framecast's steps, rising to the last one.
    assert steps == sorted(set(steps)) and steps[-1] == job.steps and len(steps) >= 2, received
    assert all(event["n"] == job.steps for event in received if event["type"] == "step")

    job.refresh_from_db()
    assert (job.state, job.attempts, job.progress_step) == (S.SUCCEEDED, 1, job.steps)
    assert job.engine_job_id.startswith("video_")
    mp4 = job.video.read()
    facts = probe_mp4(mp4)
    assert (facts["frames"], facts["width"], facts["height"], facts["codec"]) == (17, 128, 128, "h264")
    # Marked here, with this job's identifier (the engine's own mark is overwritten).
    found = provenance.verify_video(mp4)
    assert found.marked and found.record.job_id == job.id
    # Billed as any job: credits captured once, GPU-seconds from claim to end at the pool's price.
    account = BillingAccount.objects.get(team=alice.personal_team)
    assert account.held_credits == 0 and account.entries.filter(kind="capture").count() == 1
    assert 0 < job.inference_seconds <= job.gpu_seconds
    assert float(job.cost_usd) == pytest.approx(job.gpu_seconds * 3.6 / 3600, abs=1e-6)
    # The engine's copy was deleted once downloaded.
    assert engine.video(job.engine_job_id)[0] == 404


@pytest.mark.services
@pytest.mark.slow
def test_a_cancel_is_forwarded_and_a_retry_deletes_the_orphan_of_a_dead_worker(engine_world, engine_pool, alice, settings):
    """On an engine that accepts jobs and never starts them: the worker waits on its job
    there; killed, its job is requeued, and the retry deletes the orphan before submitting
    anew; a cancel then deletes the retry's job at the engine too."""
    stalled = engine_world["stalled"]
    settings.FRAMECAST_HEARTBEAT_STALE_SECONDS = 3
    start = engine_pool(stalled.api, stalled.key)
    on_plan(alice.personal_team, "pro")
    job = job_submit(team=alice.personal_team, user=alice, params=params())
    first = start("w1")
    orphan = wait_for(lambda: Job.objects.get(pk=job.pk).engine_job_id, "the first submission")
    status, video = stalled.video(orphan)
    assert (status, video["status"]) == (200, "queued")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)

    start("w2")
    time.sleep(settings.FRAMECAST_HEARTBEAT_STALE_SECONDS + 1)
    assert [j.id for j in reap_lost_jobs()] == [job.id]
    retry = wait_for(lambda: (j := Job.objects.get(pk=job.pk)).attempts == 2 and j.engine_job_id != orphan
                     and j.engine_job_id, "the retry's submission")
    assert stalled.video(orphan)[0] == 404  # deleted at the engine (cancelled, its credits back there)
    assert stalled.video(retry)[1]["status"] == "queued"

    job_cancel(job.pk)
    wait_for(lambda: stalled.video(retry)[0] == 404, "the cancel to reach the engine", timeout=30)
    job.refresh_from_db()
    assert job.state == S.CANCELLED and not job.video
    assert BillingAccount.objects.get(team=alice.personal_team).held_credits == 0
    assert [v["id"] for v in stalled.videos()] == []  # nothing left running there


# --- engines that fail ----------------------------------------------------------------------


class BadEngine:
    """A loopback server of the Videos API's routes whose answers a test chooses: `mode`
    is "500", "503", "hang" (GET of a job never answers), "forever" (in progress, always)
    or "not_video" (completed, but the content is an HTML page)."""

    def __init__(self):
        self.mode = "500"
        self.requests: list[str] = []
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: bytes, content_type="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                engine.requests.append(f"POST {self.path}")
                if engine.mode in ("500", "503"):
                    self._answer(int(engine.mode), b'{"error": {"message": "CUDA error: out of memory"}}')
                else:
                    self._answer(200, b'{"id": "vid-1", "object": "video", "status": "queued", "progress": 0}')

            def do_GET(self):
                engine.requests.append(f"GET {self.path}")
                if self.path.endswith("/content"):
                    self._answer(200, b"<html>Bad gateway</html>", "text/html")
                elif engine.mode == "hang":
                    time.sleep(30)
                elif engine.mode == "forever":
                    self._answer(200, b'{"id": "vid-1", "status": "in_progress", "progress": 10}')
                else:
                    self._answer(200, b'{"id": "vid-1", "status": "completed", "progress": 100}')

            def do_DELETE(self):
                engine.requests.append(f"DELETE {self.path}")
                self._answer(200, b'{"id": "vid-1", "deleted": true}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.mark.services
@pytest.mark.slow
def test_a_job_whose_engine_fails_fails_with_its_credits_released_and_a_reason(engine_pool, alice, settings):
    settings.FRAMECAST_MAX_ATTEMPTS = 3
    bad = BadEngine()
    try:
        start = engine_pool(bad.url, read_timeout_seconds=1, job_timeout_seconds=3, poll_seconds=0.2)
        on_plan(alice.personal_team, "pro")
        start()

        def run(mode: str) -> Job:
            bad.mode, bad.requests[:] = mode, []
            job = job_submit(team=alice.personal_team, user=alice, params=params())
            return wait_for(lambda: (j := Job.objects.get(pk=job.pk)).is_terminal and j, f"the {mode} job to end")

        cases = {
            "500": ("The video could not be generated: the rendering engine failed. Please try again.",
                    """POST /videos answered 500 while submitting the job: '{"error": {"message": "CUDA error"""),
            "hang": ("The video could not be generated: the rendering engine took too long.",
                     "no answer within 1 s while following the job (GET /videos/vid-1)"),
            "forever": ("The video could not be generated: the rendering engine took too long.",
                        "job vid-1 did not finish within 3 s (last status 'in_progress')"),
            "not_video": ("The video could not be generated: the rendering engine returned no video.",
                          "the content of vid-1 is not a video (24 bytes, starting b'<html>Bad gateway</html>')"),
        }
        for mode, (message, detail) in cases.items():
            job = run(mode)
            assert (job.state, job.attempts, job.error_message) == (S.FAILED, 1, message), (mode, job.error_detail)
            assert detail in job.error_detail, (mode, job.error_detail)
            assert not job.video
            if mode != "500":  # the engine's job is not left running
                assert "DELETE /v1/videos/vid-1" in bad.requests, (mode, bad.requests)

        # Overloaded (503) or gone (connection refused): other attempts, then failed.
        job = run("503")
        assert (job.state, job.attempts) == (S.FAILED, 3)
        assert job.error_message == ("The video could not be generated: the rendering engine was unavailable "
                                     "(3 attempts). No credits were used.")
        assert bad.requests.count("POST /v1/videos") == 3
        bad.close()
        job = run("refused")
        assert (job.state, job.attempts) == (S.FAILED, 3) and "unavailable" in job.error_message

        account = BillingAccount.objects.get(team=alice.personal_team)
        assert account.held_credits == 0 and not account.entries.filter(kind="capture").exists()
    finally:
        bad.close()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes, field",
    [({"speed": "fast"}, "speed"), ({"speed": "turbo", "steps": 4, "guidance": 1.0}, "speed"),
     ({"loras": ({"id": "l1", "name": "ink", "scale": 1.0, "file": "f", "sha256": "ab"},)}, "loras")],
)
def test_what_an_engine_cannot_do_is_refused_at_submission_with_nothing_written(
    tmp_path, settings, alice, changes, field
):
    """The engine gets the prompt, size, steps and seed: a fast, turbo or LoRA job for an
    engine pool is a 400 naming the field before any moderation record, hold or job."""
    from billing.ledger import account_for_team
    from core.errors import InvalidInput
    from generation.models import Job
    from generation.params import JobParams
    from generation.services import job_submit
    from safety.models import ModerationDecision

    settings.FRAMECAST_DEFAULT_MODEL = "framecast-tiny"
    settings.FRAMECAST_POOLS_FILE = engine_pool_file(tmp_path, "http://127.0.0.1:30010/v1")
    base = dict(model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=1, width=64, height=64,
                num_frames=9, fps=8, steps=4, guidance=5.0)
    before = account_for_team(alice.personal_team).available
    with pytest.raises(InvalidInput) as refused:
        job_submit(team=alice.personal_team, user=alice, params=JobParams(**{**base, **changes}))
    assert refused.value.field == field and "engine" in refused.value.message
    assert not Job.objects.exists() and not ModerationDecision.objects.exists()
    assert account_for_team(alice.personal_team).available == before
