"""A `next` taken from the request only ever sends the browser somewhere on this site
(issue #21: `POST /teams/<id>/switch/` followed `https://evil.example/...`)."""

import pytest

from .conftest import client_for

pytestmark = pytest.mark.django_db

ELSEWHERE = [
    "https://evil.example/phish",
    "http://evil.example",
    "//evil.example/phish",
    "/\\evil.example/phish",
    "\\\\evil.example",
    "/\\/evil.example",
    "https:evil.example",
    " //evil.example",
    "javascript:alert(1)",
    "https://testserver.evil.example/",
]


def lands_on_this_site(response) -> bool:
    location = response["Location"]
    return response.status_code == 302 and location.startswith("/") and not location.startswith(("//", "/\\"))


@pytest.mark.parametrize("target", ELSEWHERE)
def test_switching_teams_never_sends_the_browser_elsewhere(alice, acme, target):
    response = client_for(alice).post(f"/teams/{acme.id}/switch/", {"next": target})
    assert lands_on_this_site(response) and response["Location"] == "/"


@pytest.mark.parametrize("target", ELSEWHERE)
def test_logging_in_and_out_signing_up_and_resending_never_send_the_browser_elsewhere(alice, client, target):
    logged_in = client.post(
        f"/accounts/login/?next={target}", {"username": "alice@example.com", "password": "correct horse battery"}
    )
    assert lands_on_this_site(logged_in)
    assert lands_on_this_site(client.get("/accounts/signup/", {"next": target}))  # signed in already
    assert lands_on_this_site(client.post("/accounts/verify/resend/", {"next": target}))
    assert lands_on_this_site(client.post("/accounts/logout/", {"next": target}))


def test_a_next_on_this_site_is_still_followed(alice, acme):
    response = client_for(alice).post(f"/teams/{acme.id}/switch/", {"next": "/gallery/?page=2"})
    assert response["Location"] == "/gallery/?page=2"
