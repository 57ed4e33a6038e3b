"""A person in a real Chromium, against the product exactly as `make run` starts it
(embedded defaults: SQLite, in-process broker and channel layer, a worker thread, the CPU,
the tiny model): sign up, type a prompt, watch the bar move step by step, reload mid-job,
and see the video play."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import IN_CI, REPO

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory):
    """`manage.py serve` on embedded defaults in a fresh data folder, as `make run` runs it."""
    data = tmp_path_factory.mktemp("make-run")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "FRAMECAST_MODELS_DIR"}
    }
    env.update(FRAMECAST_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="config.settings")
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "--noinput"], ["prepare_models"]):
        subprocess.run(manage + command, cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    port = _free_port()
    log = (data / "serve.log").open("w")
    server = subprocess.Popen(
        manage + ["serve", "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/accounts/login/", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError((data / "serve.log").read_text())
            time.sleep(0.2)
    yield base
    server.terminate()
    server.wait(15)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_sign_up_generate_watch_progress_and_play(embedded_server, browser):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(embedded_server + "/")
    assert "/accounts/login/" in page.url
    page.click("text=Create an account")
    page.fill("#id_email", "dana@example.com")
    page.fill("#id_password", "a long passphrase 42")
    page.click("button[type=submit]")
    page.wait_for_selector("text=New video")

    # A mistake first: the form says which field is wrong, and keeps the prompt.
    page.fill("#id_prompt", "a red fox running through snow")
    page.click("summary")
    page.fill("#id_width", "100")
    page.click("text=Generate video")
    assert page.locator(".errors").inner_text().startswith("Width must be a multiple of 16")
    assert page.input_value("#id_prompt") == "a red fox running through snow"

    page.fill("#id_width", "128")
    page.fill("#id_height", "96")
    page.fill("#id_num_frames", "17")
    page.fill("#id_steps", "30")
    # The price is shown before submitting, from the server's one pricing rule.
    page.wait_for_function("/^[0-9]+$/.test(document.querySelector('[data-price]').textContent)")
    assert "balance 100 credits on the Free plan" in page.inner_text(".quote")
    # Record every step the page shows, from before its own scripts run. A mutation record
    # carries the value it replaced (several changes may arrive in one batch), so the steps
    # shown are each replaced value, then the current one.
    page.add_init_script(
        """window.replacedSteps = [];
        new MutationObserver((records) => records.forEach((r) => window.replacedSteps.push(Number(r.oldValue))))
            .observe(document, {subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-step']});
        window.stepsShown = () => [...window.replacedSteps, Number(document.getElementById('job').dataset.step)];"""
    )
    page.click("text=Generate video")
    page.wait_for_url("**/jobs/**")
    page.wait_for_function("window.stepsShown().some((step) => step >= 5)", timeout=60000)
    shown_before_reload = page.evaluate("window.stepsShown()")

    # Reload mid-job: the page resumes from the job's stored state, not from zero.
    page.reload()
    if page.get_attribute("#job", "data-state") == "running":
        assert int(page.get_attribute("#job", "data-step")) >= max(shown_before_reload)
    page.wait_for_function("document.getElementById('job').dataset.state === 'succeeded'", timeout=120000)
    shown_after_reload = page.evaluate("window.stepsShown()")

    for shown in (shown_before_reload, shown_after_reload):
        assert all(later - earlier in (0, 1) for earlier, later in zip(shown, shown[1:])), shown
    assert shown_after_reload[-1] == 30
    assert len(set(shown_before_reload + shown_after_reload)) >= 15

    assert page.is_hidden("#progress")
    page.wait_for_function("document.getElementById('player').readyState >= 2", timeout=20000)
    width, height, duration = page.eval_on_selector("#player", "v => [v.videoWidth, v.videoHeight, v.duration]")
    assert (width, height) == (128, 96)
    assert duration == pytest.approx(17 / 8, abs=0.2)
    assert errors == []

    # The gallery shows it.
    page.goto(embedded_server + "/")
    assert page.locator(".gallery li").count() == 1
    assert "a red fox running through snow" in page.locator(".gallery").inner_text()
