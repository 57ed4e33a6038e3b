"""/healthz and /readyz: what load balancers, orchestrators and the compose file ask."""

import json
import time

import pytest
from django.conf import settings
from django.db import connection

from .conftest import _database_url
from .processes import TcpProxy, get, start_server, stop


@pytest.mark.django_db
def test_healthz_answers_while_the_process_runs(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_lists_every_dependency_it_checked(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "channel_layer": "ok", "cache": "ok"},
    }


@pytest.mark.django_db
def test_probes_answer_whatever_host_and_scheme_they_are_sent_to(client, settings):
    """Probes reach a replica by its internal address over plain HTTP, even when the site
    only serves its public name over HTTPS."""
    settings.ALLOWED_HOSTS = ["framecast.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz", HTTP_HOST="10.0.3.7:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.0.3.7:8000").status_code == 200
    # Everything else still refuses an unknown host.
    assert client.get("/accounts/login/", HTTP_HOST="10.0.3.7:8000").status_code == 400


@pytest.mark.django_db
def test_a_failing_dependency_is_named_without_its_details(client, monkeypatch):
    from config import health

    def broken():
        raise ConnectionRefusedError("db.internal:5432 refused")

    monkeypatch.setitem(health.CHECKS, "database", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["unavailable"] == ["database"]
    assert body["checks"]["database"] == "unreachable (ConnectionRefusedError)"
    assert "db.internal" not in response.content.decode()


def wait_for(url: str, status: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        code, body, _ = get(url, timeout=15)
        if code == status:
            return json.loads(body)
        assert time.monotonic() < deadline, f"{url} answered {code} {body!r}, not {status}, for {timeout}s"
        time.sleep(0.3)


@pytest.mark.services
@pytest.mark.slow
def test_readyz_fails_while_postgresql_or_redis_is_unreachable_and_recovers(transactional_db, tmp_path):
    """A server whose database and Redis are reached through proxies that the test cuts and
    restores (the machine's real services are never stopped)."""
    db = connection.settings_dict
    database = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)).start()
    redis_url = settings.REDIS_URL
    from urllib.parse import urlsplit

    parts = urlsplit(redis_url)
    redis = TcpProxy(parts.hostname, parts.port or 6379).start()
    proxied_db = _database_url({**db, "HOST": "127.0.0.1", "PORT": database.port})
    proxied_redis = parts._replace(netloc=f"127.0.0.1:{redis.port}").geturl()
    server, base = start_server(
        {"DATABASE_URL": proxied_db, "REDIS_URL": proxied_redis, "CELERY_BROKER_URL": "", "LOG_FORMAT": "json"},
        tmp_path / "server.log",
    )
    try:
        assert wait_for(base + "/readyz", 200)["status"] == "ready"

        database.stop()
        body = wait_for(base + "/readyz", 503)
        assert body["unavailable"] == ["database"]
        assert body["checks"]["cache"] == "ok"
        assert get(base + "/healthz")[0] == 200  # the process itself is fine
        database.start()
        assert wait_for(base + "/readyz", 200)["checks"]["database"] == "ok"

        redis.stop()
        body = wait_for(base + "/readyz", 503)
        assert body["unavailable"] == ["broker", "channel_layer", "cache"]
        assert body["checks"]["database"] == "ok"
        redis.start()
        assert wait_for(base + "/readyz", 200)["status"] == "ready"
    finally:
        stop(server)
        database.stop()
        redis.stop()
    log = (tmp_path / "server.log").read_text()
    # The reasons are in the server's log, for the operator.
    assert "Readiness: database unreachable" in log and "Readiness: broker unreachable" in log
