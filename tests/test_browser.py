"""A person in a real Chromium, against the product exactly as `make run` starts it
(embedded defaults: SQLite, in-process broker and channel layer, a worker thread, the CPU,
the tiny model): sign up, set up a video in the studio, watch the bar move step by step,
reload mid-job, see the video play, find it in the gallery, share it with someone logged
out, cancel a job, and check that a prompt made of HTML never runs.

One server and one browser serve the whole module. Screenshots of the studio mid-job and of
the gallery go to artifacts/screenshots/ (or $FRAMECAST_SCREENSHOTS)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import IN_CI, REPO

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("FRAMECAST_SCREENSHOTS", REPO / "artifacts" / "screenshots"))
XSS_PROMPT = "<img src=x onerror=alert(1)>"
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
                raise RuntimeError((data / "serve.log").read_text()) from None
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


def signed_up(browser, base_url: str, email: str):
    """A browser context of its own for a person who signed up through the sign-up page,
    reached from the login page a logged-out visitor lands on, and then logged in."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(base_url + "/")
    assert "/accounts/login/" in page.url
    page.click("text=Create an account")
    page.fill("#id_email", email)
    page.fill("#id_password", "a long passphrase 42")
    page.click("button[type=submit]")
    page.click("section a[href^='/accounts/login/']")  # on "Check your mail", the same page a taken address gets
    page.fill("#id_username", email)
    page.fill("#id_password", "a long passphrase 42")
    page.click("button[type=submit]")
    page.wait_for_selector("text=New video")
    page.close()
    return context


@pytest.fixture(scope="module")
def person(browser, embedded_server):
    """Dana, signed up through the sign-up page, in a browser context of her own."""
    context = signed_up(browser, embedded_server, "dana@example.com")
    yield context
    context.close()


def watch(page) -> dict:
    """Collects what must never happen on a page: script errors, dialogs (an injected
    alert), and resources or scripts the Content-Security-Policy blocked."""
    seen = {"errors": [], "dialogs": [], "csp": []}
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))

    def on_dialog(dialog):
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on(
        "console",
        lambda message: seen["csp"].append(message.text) if "Content Security Policy" in message.text else None,
    )
    return seen


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def generate(page, base: str, prompt: str, *, steps: str = "4", aspect: str = "1:1", resolution: str = "64",
             duration: str = "1", model: str | None = "framecast-tiny") -> str:
    """Submit a video from the studio; returns the new job's id (its card is on the page).
    The choices are framecast-tiny's (the first option of each value is the first model's)."""
    if page.url.split("?")[0].split("#")[0] != base + "/":
        page.goto(base + "/")
    page.fill("#id_prompt", prompt)
    if model:
        page.select_option("#id_model", model)
    page.select_option("#id_aspect_ratio", aspect)
    page.select_option("#id_resolution", resolution)
    page.select_option("#id_duration", duration)
    page.select_option("#id_steps", steps)
    page.click("text=Generate video")
    page.wait_for_url(lambda url: "#job-" in url)
    job_id = page.url.split("#job-")[1]
    page.wait_for_selector(f"#job-{job_id}[data-live-job]")
    return job_id


def card_state(page, job_id: str) -> str:
    return page.get_attribute(f"#job-{job_id}", "data-state")


def wait_for_state(page, job_id: str, state: str, timeout: float = 120000) -> None:
    page.wait_for_function(
        f"() => document.getElementById('job-{job_id}').dataset.state === '{state}'", timeout=timeout
    )


def test_studio_generate_watch_progress_play_and_find_in_gallery(embedded_server, person):
    page = person.new_page()
    problems = watch(page)
    page.goto(embedded_server + "/")

    # Keyboard first: the first Tab reaches the skip link.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    # A mistake first: the form says which field is wrong, and keeps the prompt.
    page.fill("#id_prompt", "a red fox running through snow")
    page.click("summary")
    page.select_option("#id_aspect_ratio", "custom")
    page.fill("#id_width", "100")
    page.click("text=Generate video")
    assert "Width must be a multiple of 16" in page.locator(".errors").first.inner_text()
    assert page.input_value("#id_prompt") == "a red fox running through snow"

    # The studio opens on the shipped default model and says which words it knows.
    assert page.input_value("#id_model") == "framecast-toy"
    assert "a <colour> <shape> moving <direction>" in page.inner_text("[data-model-note='framecast-toy']")
    page.select_option("#id_model", "framecast-tiny")  # the choices below are the tiny model's
    assert page.is_hidden("[data-model-note='framecast-toy']")

    # The plan's limits are greyed out with the plan that lifts them, not refused later.
    steps_40 = page.locator("#id_steps option[value='40'][data-model='framecast-tiny']")
    assert steps_40.is_disabled() and "Creator plan" in steps_40.inner_text()
    assert page.locator("#id_steps option[value='30'][data-model='framecast-tiny']").is_enabled()
    assert "Greyed-out choices need a larger plan" in page.inner_text("[data-upgrade-hint]")

    page.select_option("#id_aspect_ratio", "4:3")
    page.select_option("#id_resolution", "96")
    page.select_option("#id_duration", "2")
    page.select_option("#id_steps", "30")
    page.click("[data-dice]")
    assert 0 <= int(page.input_value("#id_seed")) < 2**32
    # The price and the resulting shape come from the server's one pricing rule.
    page.wait_for_function("() => document.querySelector('[data-shape]').textContent.includes('128×96, 17 frames')")
    assert page.text_content("[data-price]").isdigit()
    assert "balance 100 credits on the Free plan" in page.inner_text(".quote")

    # Record every step the card shows, from before the page's own scripts run. A mutation
    # record carries the value it replaced (several changes may arrive in one batch), so
    # the steps shown are each replaced value, then the current one.
    page.add_init_script(
        """window.replacedSteps = [];
        new MutationObserver((records) => records.forEach((r) => window.replacedSteps.push(Number(r.oldValue))))
            .observe(document, {subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-step']});
        window.stepsShown = () => [...window.replacedSteps,
            Number(document.querySelector('[data-live-job]').dataset.step)];"""
    )
    page.click("text=Generate video")
    page.wait_for_url(lambda url: "#job-" in url)
    job_id = page.url.split("#job-")[1]
    card = f"#job-{job_id}"
    page.wait_for_function("() => window.stepsShown().some((step) => step >= 5)", timeout=90000)
    assert "Step " in page.inner_text(f"{card} [data-step-text]")
    shot(page, "studio-mid-job.png")
    shown_before_reload = page.evaluate("window.stepsShown()")

    # Reload mid-job: the card resumes from the job's stored state, not from zero.
    page.reload()
    # (Unless the reload took until the last step or the end.)
    step_at_reload = int(page.get_attribute(card, "data-step"))
    running_at_reload = card_state(page, job_id) == "running"
    resumed_mid_job = running_at_reload and step_at_reload < 30
    if running_at_reload:
        assert step_at_reload >= max(shown_before_reload)
    # Nothing on the page moves while the bar, the step and the time left change.
    page.wait_for_function("() => document.querySelector('[data-shape]').textContent.includes('frames')")
    page.evaluate(
        """window.shifts = [];
        new PerformanceObserver((list) => list.getEntries().forEach((e) => { if (!e.hadRecentInput) window.shifts.push(e.value); }))
            .observe({type: 'layout-shift'});"""
    )
    wait_for_state(page, job_id, "succeeded", timeout=180000)
    page.wait_for_timeout(300)
    assert sum(page.evaluate("window.shifts")) < 0.01, page.evaluate("window.shifts")
    shown_after_reload = page.evaluate("window.stepsShown()")
    # Live, the bar moves one step at a time. After the reload it starts at the step stored
    # when the page was rendered and may jump once, forward, to where the websocket's
    # catch-up finds the job (a slow machine renders a page in more than a step's time).
    def moves(shown):
        return [later - earlier for earlier, later in zip(shown, shown[1:]) if later != earlier]

    assert all(move == 1 for move in moves(shown_before_reload)), shown_before_reload
    assert all(move == 1 for move in moves(shown_after_reload)[1:]), shown_after_reload
    if resumed_mid_job:
        assert moves(shown_after_reload)[:1] >= [1], shown_after_reload
    assert shown_after_reload[-1] == 30
    assert len(set(shown_before_reload + shown_after_reload)) >= 15

    # The bar is full and the video plays in the card.
    assert page.eval_on_selector(f"{card} progress", "p => [p.value, p.max]") == [30, 30]
    page.wait_for_function(f"() => document.querySelector('{card} video').readyState >= 2", timeout=20000)
    width, height, duration = page.eval_on_selector(f"{card} video", "v => [v.videoWidth, v.videoHeight, v.duration]")
    assert (width, height) == (256, 192)  # generated at 128×96, stored at 2× (short side under 128)
    assert duration == pytest.approx(17 / 8, abs=0.2)

    # Its page: the player, the prompt, every parameter, the seed and the cost.
    page.click(f"{card} [data-open]")
    page.wait_for_function("() => document.getElementById('player').readyState >= 2", timeout=20000)
    assert page.eval_on_selector("#player", "v => v.duration") > 0
    assert page.inner_text("#prompt") == "a red fox running through snow"
    params = page.inner_text(".params")
    for expected in ("128×96", "17 frames at 8 fps", "30", "credit"):
        assert expected in params
    assert page.inner_text("#seed").isdigit()
    assert page.get_attribute("#download", "href").endswith("video.mp4?download=1")

    # The gallery shows it; pointing at the poster plays the video.
    page.goto(embedded_server + "/gallery/")
    tiles = page.locator(".gallery .tile")
    assert tiles.count() == 1
    assert "a red fox running through snow" in page.inner_text(".gallery")
    page.hover(".gallery .tile-link")
    page.wait_for_function(
        "() => { const v = document.querySelector('.tile-video'); return v && !v.paused && v.readyState >= 2; }",
        timeout=20000,
    )
    shot(page, "gallery.png")

    # A phone: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/", "/gallery/", "/team/", "/team/keys/", "/billing/", f"/jobs/{job_id}/"):
        page.goto(embedded_server + path)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    shot(page, "video-page-phone.png")
    assert problems == {"errors": [], "dialogs": [], "csp": []}


@pytest.fixture(scope="module")
def finished_video(person, embedded_server) -> str:
    """The URL of one of Dana's finished videos (made here if the test above did not)."""
    page = person.new_page()
    page.goto(embedded_server + "/gallery/?status=succeeded")
    if page.locator(".tile-link").count() == 0:
        job_id = generate(page, embedded_server, "waves rolling onto a beach")
        wait_for_state(page, job_id, "succeeded")
    url = embedded_server + page.get_attribute(".tile-link", "href") if page.locator(".tile-link").count() else None
    if url is None:
        page.goto(embedded_server + "/gallery/?status=succeeded")
        url = embedded_server + page.get_attribute(".tile-link", "href")
    page.close()
    return url


def test_share_link_plays_logged_out_and_dies_when_turned_off(embedded_server, browser, person, finished_video):
    page = person.new_page()
    page.goto(finished_video)
    page.click("#share-on")
    link = page.input_value("#share-url")
    assert link.startswith(embedded_server + "/s/")
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert len(token) >= 40 and str(finished_video).split("/jobs/")[1].strip("/") not in link

    stranger = browser.new_context()
    view = stranger.new_page()
    problems = watch(view)
    response = view.goto(link)
    assert response.status == 200
    view.wait_for_function("() => document.getElementById('player').readyState >= 2", timeout=20000)
    assert view.eval_on_selector("#player", "v => v.duration") > 0
    # Only that video: no team navigation, and the team's own pages still ask for a login.
    assert view.locator("nav.mainnav").count() == 0
    view.goto(finished_video)
    assert "/accounts/login/" in view.url

    page.click("#share-off")
    page.wait_for_selector("#share-on")
    assert view.goto(link).status == 404
    assert view.goto(link + "video.mp4").status == 404
    assert problems == {"errors": [], "dialogs": [], "csp": []}
    stranger.close()


def test_several_jobs_each_with_its_own_bar_and_cancel_the_second(embedded_server, person):
    page = person.new_page()
    problems = watch(page)
    # Every job websocket passes through here, so that the test can drop one.
    sockets = []

    def through(route):
        sockets.append(route)
        route.connect_to_server()

    page.route_web_socket(lambda url: "/ws/jobs/" in url, through)
    page.goto(embedded_server + "/")
    # The largest job the Free plan and the tiny model allow, so that it is still running
    # after the steps below on an idle machine too.
    first = generate(
        page, embedded_server, "a slow spinning cube", steps="30", aspect="16:9", resolution="128", duration="4"
    )
    second = generate(page, embedded_server, "a second video, to cancel", steps="30")
    assert page.locator("[data-live-job]").count() == 2
    # The Free plan runs one job at a time: the second waits for a slot, and says so.
    wait_for_state(page, first, "running")
    assert card_state(page, second) in ("throttled", "queued")
    assert page.inner_text(f"#job-{second} [data-status]").startswith(("Waiting for a free slot", "Queued"))

    page.click(f"#job-{second} [data-cancel] button")
    wait_for_state(page, second, "cancelled", timeout=20000)
    assert page.inner_text(f"#job-{second} [data-status]") == "Cancelled"
    assert page.is_hidden(f"#job-{second} [data-cancel]")

    # The first goes on, on its own bar, also when its websocket drops: the card reconnects
    # and catches up from the stored job.
    page.wait_for_function(f"() => Number(document.getElementById('job-{first}').dataset.step) >= 2", timeout=60000)
    assert page.eval_on_selector(f"#job-{second} progress", "p => p.value") == 0
    first_sockets = [route for route in sockets if first in route.url]
    first_sockets[-1].close(code=1011, reason="test drops the connection")
    dropped_at = int(page.get_attribute(f"#job-{first}", "data-step"))
    page.wait_for_function(
        f"() => Number(document.getElementById('job-{first}').dataset.step) >= {dropped_at + 2}", timeout=60000
    )
    assert len([route for route in sockets if first in route.url]) == len(first_sockets) + 1, "one reconnection"
    assert page.inner_text(f"#job-{first} [data-status]") == "Generating"
    page.click(f"#job-{first} [data-cancel] button")
    wait_for_state(page, first, "cancelled", timeout=30000)

    page.goto(embedded_server + "/gallery/?status=cancelled")
    assert page.locator(".gallery .tile").count() == 2
    assert problems == {"errors": [], "dialogs": [], "csp": []}


def test_the_default_model_draws_what_the_prompt_says(embedded_server, person):
    """What a person trying `make run` sees: a sentence of the default model's world, with
    the studio's defaults, comes out as a video of that scene."""
    from gpu_workers.encode import decode_frames, probe_mp4
    from gpu_workers.toy import judge

    page = person.new_page()
    problems = watch(page)
    page.goto(embedded_server + "/")
    page.fill("#id_prompt", "a red square moving right on a white background")
    page.click("summary")
    page.fill("#id_seed", "1")  # any seed works nearly always; this one is checked
    page.click("text=Generate video")
    page.wait_for_url(lambda url: "#job-" in url)
    job_id = page.url.split("#job-")[1]
    wait_for_state(page, job_id, "succeeded")

    page.click(f"#job-{job_id} [data-open]")
    assert "32×32" in page.inner_text(".params")
    video = page.request.get(embedded_server + page.get_attribute("#download", "href")).body()
    assert (probe_mp4(video)["width"], probe_mp4(video)["height"]) == (128, 128)  # stored at 4×
    verdict = judge.judge(decode_frames(video))
    assert (verdict.background, verdict.colour, verdict.motion) == ("white", "red", "right"), verdict
    assert problems == {"errors": [], "dialogs": [], "csp": []}


def test_turbo_in_the_studio_then_the_same_video_at_full_quality_in_one_click(embedded_server, person):
    """The default model's turbo speed: picking it says what it does and takes over the
    steps; the turbo video's page renders it again at full quality with one click."""
    page = person.new_page()
    problems = watch(page)
    page.goto(embedded_server + "/")
    page.fill("#id_prompt", "a blue circle moving up on a black background")
    assert page.input_value("#id_model") == "framecast-toy"
    assert page.is_enabled("#id_steps")
    page.select_option("#id_speed", "turbo")
    assert page.is_disabled("#id_steps")
    assert "fewer steps: faster and cheaper, may lose fine motion" in page.inner_text("[data-speed-note]")
    page.click("summary")
    page.fill("#id_seed", "5")
    page.click("text=Generate video")
    page.wait_for_url(lambda url: "#job-" in url)
    job_id = page.url.split("#job-")[1]
    wait_for_state(page, job_id, "succeeded")

    page.goto(embedded_server + f"/jobs/{job_id}/")
    params = page.inner_text(".params")
    assert "Turbo" in params and "Seed\n5" in params.replace("\t", "\n")
    page.click("#full-quality")
    page.wait_for_url(lambda url: f"/jobs/{job_id}/" not in url and "/jobs/" in url)
    again = page.inner_text(".params").replace("\t", "\n")
    assert "Standard" in again and "Steps\n25" in again and "Seed\n5" in again
    assert page.locator("#full-quality").count() == 0
    assert problems == {"errors": [], "dialogs": [], "csp": []}


def test_a_prompt_made_of_html_never_runs(embedded_server, browser, person):
    page = person.new_page()
    problems = watch(page)
    page.add_init_script("window.addEventListener('error', (e) => { if (e.target && e.target.tagName === 'IMG') window.__xss = true; }, true);")
    page.goto(embedded_server + "/")
    job_id = generate(page, embedded_server, XSS_PROMPT)
    wait_for_state(page, job_id, "succeeded")

    def harmless(view, where):
        view.wait_for_load_state("load")
        assert view.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0, where
        assert view.evaluate("window.__xss === undefined"), where

    harmless(page, "studio, live card")
    assert XSS_PROMPT in page.inner_text(f"#job-{job_id}")
    page.goto(embedded_server + "/")
    harmless(page, "studio, recent videos")
    assert XSS_PROMPT in page.inner_text(".gallery")
    page.goto(embedded_server + f"/jobs/{job_id}/")
    harmless(page, "video page")
    assert page.inner_text("#prompt") == XSS_PROMPT
    page.goto(embedded_server + "/gallery/")
    harmless(page, "gallery")
    page.goto(embedded_server + f"/?remix={job_id}")
    harmless(page, "remix")
    assert page.input_value("#id_prompt") == XSS_PROMPT

    page.goto(embedded_server + f"/jobs/{job_id}/")
    page.click("#share-on")
    link = page.input_value("#share-url")
    stranger = browser.new_context()
    view = stranger.new_page()
    view_problems = watch(view)
    view.add_init_script("window.addEventListener('error', (e) => { if (e.target && e.target.tagName === 'IMG') window.__xss = true; }, true);")
    view.goto(link)
    harmless(view, "shared page")
    assert view.inner_text("#prompt") == XSS_PROMPT
    stranger.close()
    assert problems == view_problems == {"errors": [], "dialogs": [], "csp": []}
