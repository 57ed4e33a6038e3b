"""The shared test world: Alice and Charlie (each with a personal team), a tiny model built
once, an ASGI server in a thread, and real Celery worker processes on demand.

Tests marked `services` need the real PostgreSQL and Redis (DATABASE_URL, REDIS_URL). In
CI (CI=true) such a test fails when they are missing; elsewhere it is skipped.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings

from accounts.selectors import ACTIVE_TEAM_SESSION_KEY
from accounts.services import user_signup

REPO = Path(__file__).resolve().parent.parent
# The shipped default model, also in the servers and workers the tests start as processes (in
# this process, _isolated_data sets it), whatever the developer's environment says. Tests whose
# figures are framecast-tiny's limits and prices use the tiny_default fixture.
os.environ["FRAMECAST_DEFAULT_MODEL"] = "framecast-toy"
# No test sends a webhook off this machine, or even looks its host up: only loopback
# endpoints (the tests' own receivers) are resolved and delivered to, here and in the
# servers and workers the tests start.
os.environ["FRAMECAST_WEBHOOKS_LOOPBACK_ONLY"] = "true"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _services_problem() -> str | None:
    if connection.vendor != "postgresql":
        return f"DATABASE_URL does not point at PostgreSQL (the database is {connection.vendor})"
    if not settings.REDIS_URL:
        return "REDIS_URL is not set"
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        return f"Redis at {settings.REDIS_URL} does not answer: {error}"
    return None


def pytest_runtest_setup(item):
    if item.get_closest_marker("services") is None:
        return
    problem = _services_problem()
    if problem:
        message = f"needs PostgreSQL and Redis: {problem}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def data_dirs(tmp_path_factory):
    """Media and model folders for this test run, shared with the worker processes."""
    root = tmp_path_factory.mktemp("framecast-data")
    dirs = {"MEDIA_ROOT": root / "media", "FRAMECAST_MODELS_DIR": root / "models"}
    for path in dirs.values():
        path.mkdir()
    override = override_settings(**dirs)
    override.enable()
    yield dirs
    override.disable()


@pytest.fixture(autouse=True)
def _isolated_data(data_dirs, settings):
    """No test writes into the developer's var/ folder, and each test counts (log-in
    failures, rate limits) under a cache key prefix of its own: the Redis in CI is shared
    with other runs, so it is never flushed. Cheap password hashing keeps sign-ups fast."""
    settings.CACHES = {name: {**config, "KEY_PREFIX": uuid.uuid4().hex} for name, config in settings.CACHES.items()}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.FRAMECAST_DEFAULT_MODEL = "framecast-toy"
    settings.FRAMECAST_WEBHOOKS_LOOPBACK_ONLY = True


@pytest.fixture
def tiny_default(settings):
    """framecast-tiny as the default model, for tests written around its limits, sizes and
    prices (pytestmark = pytest.mark.usefixtures("tiny_default") in their module)."""
    settings.FRAMECAST_DEFAULT_MODEL = "framecast-tiny"


@pytest.fixture(scope="module")
def warm_tiny_pipeline(tmp_path_factory):
    """A tiny pipeline of the module's own, loaded through the worker's pipeline cache as a
    worker holds it (the cache is emptied before and after the module)."""
    from gpu_workers import pipeline
    from gpu_workers.tiny_model import ensure_tiny_model

    path = tmp_path_factory.mktemp("models") / "tiny"
    ensure_tiny_model(path)
    pipeline.clear_pipeline_cache()
    yield pipeline.load_pipeline(path)
    pipeline.clear_pipeline_cache()


@pytest.fixture(scope="session")
def tiny_model(data_dirs):
    from gpu_workers.tiny_model import ensure_tiny_model

    from generation import catalog

    ensure_tiny_model(catalog.TINY.weights_path())
    return catalog.TINY.weights_path()


@pytest.fixture
def alice(db):
    return user_signup(email="alice@example.com", password="correct horse battery")


@pytest.fixture
def charlie(db):
    return user_signup(email="charlie@example.com", password="correct horse battery")


def client_for(user, team=None) -> Client:
    """A browser signed in as `user`, working in `team` (default: their personal team)."""
    client = Client()
    client.force_login(user)
    if team is not None:
        session = client.session
        session[ACTIVE_TEAM_SESSION_KEY] = team.pk
        session.save()
    return client


def on_plan(team, slug: str):
    """Put the team on a plan (as staff would in the admin), with that plan's credits."""
    from billing.ledger import account_for_team, subscription_renew
    from billing.models import BillingAccount, Plan

    account_for_team(team)
    BillingAccount.objects.filter(team=team).update(plan=Plan.objects.get(slug=slug))
    return subscription_renew(team, reference=f"test-{slug}", period_end=None)


def at_once(attempt, count: int, *, timeout: float = 60) -> list:
    """Run `attempt()` in `count` threads released together, each on its own database
    connection; returns what each returned or raised, in no particular order."""
    barrier = threading.Barrier(count)
    outcomes: list = []

    def run() -> None:
        try:
            barrier.wait()
            outcomes.append(attempt())
        except Exception as error:  # noqa: BLE001 - the caller inspects every outcome
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return outcomes


def page_text(response) -> str:
    """The response body as a person reads it (HTML entities decoded)."""
    import html

    return html.unescape(response.content.decode())


@pytest.fixture
def bob(db):
    return user_signup(email="bob@example.com", password="correct horse battery")


@pytest.fixture
def acme(alice, bob):
    """Alice's company team: Alice is the owner, Bob a member."""
    from accounts.models import Membership
    from accounts.teams import team_create

    team = team_create(user=alice, name="Acme")
    Membership.objects.create(team=team, user=bob, role=Membership.Role.MEMBER)
    return team


@pytest.fixture
def alice_client(alice):
    return client_for(alice)


@pytest.fixture
def charlie_client(charlie):
    return client_for(charlie)


# A request the tiny model runs in well under a second on the CPU.
SMALL_REQUEST = {
    "prompt": "a red ball bouncing on a blue floor",
    "width": "64",
    "height": "48",
    "num_frames": "9",
    "fps": "8",
    "steps": "4",
    "guidance": "4.5",
}


@pytest.fixture
def asgi_server(transactional_db):
    """The real ASGI application (HTTP + websockets) served by uvicorn in a thread.
    Yields its base URL, e.g. http://127.0.0.1:43123."""
    import uvicorn

    from config.asgi import application

    config = uvicorn.Config(
        application, host="127.0.0.1", port=0, ws="websockets-sansio", lifespan="off", log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def websocket_connect(base_url: str, path: str, client: Client | None):
    from websockets.sync.client import connect

    headers = {}
    if client is not None:
        headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return connect(
        base_url.replace("http://", "ws://") + path,
        origin=base_url,
        additional_headers=headers,
        proxy=None,
        open_timeout=10,
    )


def _database_url(db: dict) -> str:
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def queue_prefix():
    """Queues of this test's own (`<prefix>gpu.<pool>`), so that no other run's worker
    takes its jobs from the shared broker."""
    prefix = f"test-{uuid.uuid4().hex[:10]}."
    with override_settings(FRAMECAST_QUEUE_PREFIX=prefix):
        yield prefix


@pytest.fixture
def start_worker(transactional_db, tiny_model, data_dirs, queue_prefix, tmp_path):
    """Start a real Celery worker process (solo pool, late acks, prefetch 1) that consumes
    this test's pool queue from the real broker and writes to the test database."""
    processes: list[tuple[subprocess.Popen, Path]] = []

    from generation.pools import queue_name

    def start(name: str = "w1", pool: str = "cpu", **extra_env: str) -> subprocess.Popen:
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": _database_url(db),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "MEDIA_ROOT": str(data_dirs["MEDIA_ROOT"]),
            "FRAMECAST_MODELS_DIR": str(data_dirs["FRAMECAST_MODELS_DIR"]),
            "FRAMECAST_QUEUE_PREFIX": queue_prefix,
            "SECRET_KEY": settings.SECRET_KEY,
            **extra_env,
        }
        log = tmp_path / f"worker-{name}.log"
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "-Q", queue_name(pool), "--pool", "solo", "--concurrency", "1",
                "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
            ],
            cwd=REPO,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append((process, log))
        return process

    yield start
    for process, log in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        print(f"--- {log.name} ---\n{log.read_text()[-6000:]}")
