"""In a real Chromium against the ASGI application: an owner uploads a LoRA on the LoRAs
page, finds it in the studio's pickers for its model only, and makes a video with it."""

import os
import shutil

import pytest
from django.conf import settings

from generation.models import Job, Lora

from .conftest import IN_CI, client_for, on_plan
from .loras import lora_bytes, tiny_config
from .test_browser import CHROMIUM, CHROMIUM_ARGS, watch

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("tiny_default")]


@pytest.fixture
def browser(transactional_db, monkeypatch):
    """Chromium started after the test database is set up (and closed before it is torn
    down): Playwright's sync API runs an event loop in this thread, and the test's ORM calls
    between its calls are plain synchronous ones."""
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail("Debian's chromium is not installed", pytrace=False)
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_upload_a_lora_then_pick_it_in_the_studio_for_its_model_only(
    asgi_server, alice, tiny_model, tmp_path, data_dirs, browser
):
    shutil.rmtree(data_dirs["MEDIA_ROOT"] / "teams", ignore_errors=True)
    on_plan(alice.personal_team, "creator")
    session = client_for(alice).cookies[settings.SESSION_COOKIE_NAME].value
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": asgi_server}])
    page = context.new_page()
    problems = watch(page)

    file = tmp_path / "ink.safetensors"
    file.write_bytes(lora_bytes(tiny_config(tiny_model)))
    page.goto(asgi_server + "/loras/")
    page.fill("#id_name", "ink")
    page.select_option("#id_model", "framecast-tiny")
    page.set_input_files("#id_file", str(file))
    page.click("text=Upload LoRA")
    assert "LoRA 'ink' is ready for framecast-tiny videos." in page.inner_text("main")
    lora = Lora.objects.get()

    page.goto(asgi_server + "/")
    page.click("#studio-loras summary")
    option = page.locator(f"#id_lora_1 option[value='{lora.pk}']")
    page.select_option("#id_model", "framecast-toy")
    assert option.is_disabled(), "another model's LoRA is not offered"
    page.select_option("#id_model", "framecast-tiny")
    assert option.is_enabled()
    page.select_option("#id_lora_1", str(lora.pk))
    page.fill("#id_lora_1_scale", "0.8")
    page.fill("#id_prompt", "a red ball bouncing")
    page.select_option("#id_model", "framecast-toy")
    assert page.input_value("#id_lora_1") == "", "switching model drops the other model's LoRA"
    page.select_option("#id_model", "framecast-tiny")
    page.select_option("#id_lora_1", str(lora.pk))
    page.click("text=Generate video")
    page.wait_for_url(lambda url: "#job-" in url)
    job = Job.objects.get()
    assert [(entry["name"], entry["scale"]) for entry in job.loras] == [("ink", 0.8)]
    assert problems == {"errors": [], "dialogs": [], "csp": []}
    context.close()
