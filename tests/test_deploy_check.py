"""Production settings pass Django's deployment checklist, and the deployment files agree
with the code: the compose file validates, every setting is documented in .env.example,
the web image stays without torch."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k3V9xQ2mT7pLr8sW4nB6yH1cJ5fD0gA9zE3uR7iO2vN8bM4qX6wK1tY5hG0jS",
    "ALLOWED_HOSTS": "framecast.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://framecast.example.com",
    "FRAMECAST_HTTPS": "true",
}


def check_deploy(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deployment_checklist():
    result = check_deploy(PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_https_the_checklist_names_what_is_missing():
    result = check_deploy({**PRODUCTION, "FRAMECAST_HTTPS": "false"})
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr, result.stderr


def test_https_turns_on_hsts_secure_cookies_and_the_redirect(settings, client, db):
    """What the production settings mean for a browser, seen in the responses."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    plain = client.get("/accounts/login/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    secure = client.get("/accounts/login/", secure=True)
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "script-src 'self'" in secure["Content-Security-Policy"]


def _settings_read_from_the_environment() -> set[str]:
    names = set()
    call = re.compile(r"""(?:environ\.get|env_bool|env_int|env_list|environ\[)\(?\s*["']([A-Z][A-Z0-9_]+)["']""")
    for path in REPO.glob("*/**/*.py"):
        # (framecast_client is the customer's CLI: its variables are its own.)
        if path.parts[len(REPO.parts)] in {"tests", ".venv", "bench", "build", "framecast_client"}:
            continue
        names |= set(call.findall(path.read_text()))
    # torchrun sets its ranks' variables itself (gpu_workers/multigpu.py reads them).
    return names - {"DJANGO_SETTINGS_MODULE", "RANK", "LOCAL_RANK", "WORLD_SIZE"}


def test_every_setting_is_listed_in_env_example():
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    missing = sorted(_settings_read_from_the_environment() - documented)
    assert not missing, f"settings missing from .env.example: {', '.join(missing)}"


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_the_web_image_has_no_torch_and_the_worker_image_has():
    web = (REPO / "platform" / "Dockerfile.web").read_text()
    worker = (REPO / "platform" / "Dockerfile.worker").read_text()
    assert "pip install ." in web and "[worker]" not in web
    assert "pip install '.[worker]'" in worker and "torch==2.13.0" in worker
    assert not (REPO / "platform" / "__init__.py").exists()  # `platform` would shadow the stdlib


def test_compose_runs_each_pool_worker_on_its_pools_queue_and_the_web_tier_without_torch():
    import tomllib

    services = compose()["services"]
    pools = {pool["name"] for pool in tomllib.loads((REPO / "generation" / "pools.toml").read_text())["pools"]}
    for name, service in services.items():
        command = service.get("command")
        text = command if isinstance(command, str) else " ".join(command or [])
        if "-Q gpu." in text:
            pool = re.search(r"-Q gpu\.(\S+)", text).group(1)
            assert pool in pools, f"{name} consumes gpu.{pool}, a pool missing from generation/pools.toml"
            assert service["build"]["dockerfile"] == "platform/Dockerfile.worker"
            assert "--pool solo --concurrency 1" in text
    for name in ("web", "worker-light", "beat", "migrate"):
        assert services[name]["build"]["dockerfile"] == "platform/Dockerfile.web", name
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    gpu = services["worker-h100"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    assert {"pgdata", "media"} <= set(compose()["volumes"])


def test_docker_compose_config_validates(tmp_path):
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker CLI is not installed")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"the docker compose plugin is not installed ({(probe.stderr or probe.stdout).strip()})")
    env = {**os.environ, "SECRET_KEY": PRODUCTION["SECRET_KEY"], "POSTGRES_PASSWORD": "test-only"}
    result = subprocess.run(
        [docker, "compose", "-f", str(REPO / "docker-compose.yml"), "--profile", "gpu", "config", "--quiet"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_one_setting_moves_media_to_s3_with_signed_expiring_urls():
    """Presigning is computed locally: no bucket is contacted."""
    script = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.files.storage import default_storage, storages\n"
        "print(type(storages['default']).__name__)\n"
        "print(default_storage.url('videos/2026/11/25/clip.mp4'))\n"
        "print(settings.CONTENT_SECURITY_POLICY)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={
            **os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "MEDIA_S3_BUCKET": "framecast-media",
            "MEDIA_S3_ENDPOINT_URL": "https://minio.internal:9000", "MEDIA_S3_REGION": "us-east-1",
            "MEDIA_URL_EXPIRE_SECONDS": "300", "AWS_ACCESS_KEY_ID": "AKIATEST", "AWS_SECRET_ACCESS_KEY": "test-secret",
        },
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    backend, url, policy = result.stdout.strip().splitlines()
    assert backend == "S3Storage"
    assert url.startswith("https://minio.internal:9000/framecast-media/videos/2026/11/25/clip.mp4?")
    assert "X-Amz-Expires=300" in url and "X-Amz-Signature=" in url
    assert "media-src 'self' blob: https://minio.internal:9000;" in policy
