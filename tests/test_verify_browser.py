"""In a real Chromium against the product as `make run` starts it: a prompt the policy
refuses is explained in the studio; a video made in the studio, downloaded, and uploaded
to /verify by someone logged out is recognised as Framecast's; a non-video is refused
with a clear message; nothing trips the Content-Security-Policy."""

import pytest

from .test_browser import browser, embedded_server, generate, signed_up, wait_for_state, watch  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def maker(browser, embedded_server):  # noqa: F811 - the imported fixtures
    context = signed_up(browser, embedded_server, "erin@example.com")
    yield context
    context.close()


def test_a_refused_prompt_is_explained_in_the_studio(embedded_server, maker):  # noqa: F811
    page = maker.new_page()
    problems = watch(page)
    page.goto(embedded_server + "/")
    page.fill("#id_prompt", "a naked schoolgirl")
    page.click("text=Generate video")
    errors = page.locator(".errors").first.inner_text()
    assert "Framecast does not generate sexual or sexualised content involving minors" in errors
    assert "no credits were used" in errors
    assert problems == {"errors": [], "dialogs": [], "csp": []}
    page.close()


def test_a_studio_video_is_recognised_by_the_verifier(embedded_server, maker, browser, tmp_path):  # noqa: F811
    page = maker.new_page()
    job_id = generate(page, embedded_server, "a red kite over a green hill")
    wait_for_state(page, job_id, "succeeded")
    video = maker.request.get(f"{embedded_server}/jobs/{job_id}/video.mp4")
    assert video.ok
    downloaded = tmp_path / "kite.mp4"
    downloaded.write_bytes(video.body())
    page.close()

    stranger = browser.new_context()
    page = stranger.new_page()
    problems = watch(page)
    page.goto(embedded_server + "/verify")
    page.set_input_files("#id_file", str(downloaded))
    page.click("text=Check the video")
    assert page.inner_text("#verdict") == "Framecast watermark found"
    assert page.inner_text("#confidence").endswith("%")
    assert job_id not in page.content()  # outsiders learn that it is Framecast's, not whose

    not_a_video = tmp_path / "notes.txt"
    not_a_video.write_text("just some text")
    page.set_input_files("#id_file", str(not_a_video))
    page.click("text=Check the video")
    assert "could not be read as a video" in page.inner_text("#file-errors")
    assert problems == {"errors": [], "dialogs": [], "csp": []}
    stranger.close()
