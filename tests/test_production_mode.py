"""Framecast run the way docker-compose.yml runs it, on this machine's PostgreSQL and Redis:
the ASGI server, a light worker (periodic work, webhooks), a worker for each of two pools
and beat, each its own process; a separate client process makes videos through the public
API while one pool's worker is killed mid-job and started again. Also: the JSON logs that
let an operator follow one request from the API into the worker."""

import contextvars
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from core.logs import ContextFilter, JsonFormatter
from core.request_id import bound

from .conftest import _database_url, on_plan
from .processes import group_alive, start_process, start_server, stop_all


def json_line(record: logging.LogRecord) -> dict:
    def format_() -> dict:
        ContextFilter().filter(record)
        return json.loads(JsonFormatter().format(record))

    return contextvars.copy_context().run(format_)


def test_a_json_log_line_names_its_request_and_job():
    record = logging.LogRecord("gpu_workers.runner", logging.INFO, __file__, 1, "Job %s denoised", ("j1",), None)
    with bound(request_id="req_abc", job_id="j1"):
        line = json_line(record)
    assert line["message"] == "Job j1 denoised"
    assert (line["level"], line["logger"], line["request_id"], line["job_id"]) == ("INFO", "gpu_workers.runner", "req_abc", "j1")
    assert line["time"].endswith("+00:00")


def test_a_json_log_line_keeps_extra_fields_and_the_traceback():
    try:
        raise ValueError("bad frame")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    record.status = 500
    line = contextvars.Context().run(json_line, record)  # outside any request or job
    assert line["status"] == 500
    assert "ValueError: bad frame" in line["exception"]
    assert "job_id" not in line  # empty context fields are left out


def test_tasks_sent_during_a_request_carry_its_id_to_the_worker():
    from types import SimpleNamespace

    from celery import signals
    from celery.app.task import Context

    from core import request_id
    from config.celery_app import app

    sent = {}

    def capture(headers=None, **kwargs):
        sent.update(headers)

    signals.before_task_publish.connect(capture, weak=False)
    try:
        with bound(request_id="req_from_api"), app.connection_for_write("memory://") as conn:
            app.send_task("generation.retry_webhooks", connection=conn, queue="never-consumed")
    finally:
        signals.before_task_publish.disconnect(capture)
    assert sent[request_id.CELERY_HEADER] == "req_from_api"

    # The worker makes the message's headers attributes of task.request.
    task = SimpleNamespace(request=Context({"id": "t1", request_id.CELERY_HEADER: "req_from_api"}))
    request_id._on_task_start(task_id="t1", task=task)
    try:
        assert request_id.current_request_id.get() == "req_from_api"
    finally:
        request_id._on_task_end(task_id="t1")
    assert request_id.current_request_id.get() == ""


def test_an_unknown_log_format_is_refused_naming_the_setting():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_FORMAT": "xml"},
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "LOG_FORMAT='xml' is not a log format; use one of: json, text." in result.stderr


def test_the_csp_header_is_on_every_page(client, db):
    response = client.get("/accounts/login/")
    assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in settings.CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in settings.CONTENT_SECURITY_POLICY
    assert response["X-Frame-Options"] == "DENY"


# --- The production-mode run ---------------------------------------------------------

POOLS = """
[[pools]]
name = "small"
gpu = "CPU (small clips)"
price_per_gpu_hour = 0.04
models = ["framecast-tiny", "framecast-toy"]
max_pixels_per_frame = 4096

[[pools]]
name = "large"
gpu = "CPU (larger clips)"
price_per_gpu_hour = 0.08
models = ["framecast-tiny", "framecast-toy"]
"""
SMALL = {"width": 64, "height": 48, "num_frames": 9, "steps": 4}  # 3072 pixels: pool "small"
LARGE = {"width": 80, "height": 64, "num_frames": 9, "steps": 6}  # 5120 pixels: pool "large"

CLIENT = """
import json, pathlib, sys
from framecast_client import Client

url, key, out, requests = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3]), json.loads(sys.argv[4])
client = Client(url, key)
videos = [client.create_video(prompt, **params) for prompt, params in requests]
print(json.dumps({"submitted": [video["id"] for video in videos]}), flush=True)
for video in videos:
    video = client.wait(video["id"])
    if video["status"] == "succeeded":
        (out / (video["id"] + ".mp4")).write_bytes(client.download(video))
    print(json.dumps(video), flush=True)
"""


def read_json_lines(path) -> list[dict]:
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass  # a library printing to stdout
    return lines


@pytest.mark.services
@pytest.mark.slow
def test_the_compose_processes_make_videos_and_survive_a_killed_worker(
    transactional_db, alice, tiny_model, data_dirs, queue_prefix, tmp_path
):
    from accounts.api_keys import apikey_create
    from accounts.models import Membership
    from billing.models import BillingAccount
    from generation.models import Job
    from gpu_workers.encode import DISPLAY_MIN_SIDE, probe_mp4

    on_plan(alice.personal_team, "pro")
    _, api_key = apikey_create(membership=Membership.objects.get(user=alice), name="production-test")
    pools_file = tmp_path / "pools.toml"
    pools_file.write_text(POOLS)
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": "",
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MEDIA_ROOT": str(data_dirs["MEDIA_ROOT"]),
        "FRAMECAST_MODELS_DIR": str(data_dirs["FRAMECAST_MODELS_DIR"]),
        "FRAMECAST_POOLS_FILE": str(pools_file),
        "FRAMECAST_QUEUE_PREFIX": queue_prefix,
        "LOG_FORMAT": "json",
        # A lost worker is noticed in seconds rather than a minute (beat reaps every 3 s).
        "FRAMECAST_HEARTBEAT_SECONDS": "1",
        "FRAMECAST_HEARTBEAT_STALE_SECONDS": "6",
    }

    def worker(name: str, queues: list[str]) -> subprocess.Popen:
        return start_process(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(queues), "--pool", "solo",
             "--concurrency", "1", "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            env=env,
            log=tmp_path / f"{name}.log",
        )

    processes: dict[str, subprocess.Popen] = {}
    began = time.monotonic()
    try:
        processes["light"] = worker("light", [f"{queue_prefix}celery", f"{queue_prefix}webhooks"])
        processes["small"] = worker("small", [f"{queue_prefix}gpu.small"])
        processes["large"] = worker("large", [f"{queue_prefix}gpu.large"])
        processes["beat"] = start_process(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "-s", str(tmp_path / "beat-schedule"),
             "--loglevel", "INFO"],
            env=env,
            log=tmp_path / "beat.log",
        )
        processes["web"], base = start_server(env, tmp_path / "web.log")

        requests = [[f"small clip {n}", SMALL] for n in range(2)] + [[f"large clip {n}", LARGE] for n in range(2)]
        client = subprocess.Popen(
            [sys.executable, "-c", CLIENT, base, api_key, str(tmp_path), json.dumps(requests)],
            env={key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "REDIS_URL"))},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        # Kill the large pool's worker in the middle of its first job, then start it again
        # as `docker compose restart` would: same name, same queue.
        deadline = time.monotonic() + 90
        while not Job.objects.filter(pool="large", state=Job.State.RUNNING, progress_step__gte=1).exists():
            assert client.poll() is None, client.communicate()
            assert time.monotonic() < deadline, "no large job started"
            time.sleep(0.1)
        victim = Job.objects.get(pool="large", state=Job.State.RUNNING)
        os.killpg(processes["large"].pid, signal.SIGKILL)
        processes["large"].wait()
        processes["large"] = worker("large", [f"{queue_prefix}gpu.large"])

        print(f"killed and restarted the large worker at {time.monotonic() - began:.1f}s")
        out, err = client.communicate(timeout=150)
        print(f"the client had its videos at {time.monotonic() - began:.1f}s")
        assert client.returncode == 0, err
    finally:
        results = stop_all(processes, logs=tmp_path)

    # Every video was made, once, and the killed one on a second attempt.
    lines = [json.loads(line) for line in out.splitlines()]
    submitted, finished = lines[0]["submitted"], lines[1:]
    assert [video["status"] for video in finished] == ["succeeded"] * 4, finished
    assert Job.objects.count() == 4
    pools = dict(Job.objects.values_list("id", "pool"))
    assert sorted(pools.values()) == ["large", "large", "small", "small"]
    victim.refresh_from_db()
    assert (victim.state, victim.attempts) == (Job.State.SUCCEEDED, 2)
    assert BillingAccount.objects.get(team=alice.personal_team).held_credits == 0
    for video_id in submitted:
        info = probe_mp4((tmp_path / f"{video_id}.mp4").read_bytes())
        expected = SMALL if pools[__import__("uuid").UUID(video_id)] == "small" else LARGE
        k = -(-DISPLAY_MIN_SIDE // min(expected["width"], expected["height"]))  # stored at k× (64×48: 3×)
        assert (info["width"], info["height"], info["frames"]) == (k * expected["width"], k * expected["height"], 9)

    # Everything stopped on SIGTERM, cleanly, leaving no process behind. (uvicorn shuts
    # down, then re-raises the signal it caught, so its status is "terminated by SIGTERM".)
    assert results == {"light": 0, "small": 0, "large": 0, "beat": 0, "web": -signal.SIGTERM}, results
    assert "Finished server process" in (tmp_path / "web.log").read_text()
    assert not any(group_alive(process.pid) for process in processes.values())

    # One request id from the API call to the worker: each job's worker log lines carry
    # the id of the POST that created it.
    web = read_json_lines(tmp_path / "web.log")
    posts = {line["request_id"] for line in web if line.get("route") == "/api/v1/videos" and line.get("status") == 201}
    assert len(posts) == 4
    worker_lines = read_json_lines(tmp_path / "small.log") + read_json_lines(tmp_path / "large.log")
    by_job = {}
    for line in worker_lines:
        if line.get("job_id"):
            by_job.setdefault(line["job_id"], set()).add(line.get("request_id"))
    assert set(by_job) == {str(job_id) for job_id in pools}
    assert all(len(ids) == 1 and ids <= posts for ids in by_job.values()), by_job
    assert len({next(iter(ids)) for ids in by_job.values()}) == 4


def test_the_api_docs_work_under_the_policy(client, db):
    """Swagger UI's page has no inline script or style; its start-up script is a URL."""
    import re

    page = client.get("/api/docs/").content.decode()
    assert "<style" not in page
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="' in attributes and not body.strip() for attributes, body in scripts)
    own = [re.search(r'src="([^"]+)"', attributes).group(1) for attributes, _ in scripts if "script" in attributes]
    script = client.get(own[-1].replace("&amp;", "&"))
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
