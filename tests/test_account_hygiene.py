"""Account hygiene: password reset and change, email verification, log-in throttling.
Alice and Charlie have accounts; nobody has one for nobody@example.com."""

import re
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client

from accounts.models import User
from tests.conftest import client_for

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase 7"
SERVER = "http://testserver"
TOO_MANY = "Too many failed log-in attempts. Try again in"

pytestmark = pytest.mark.django_db


def mailed_link(mail) -> str:
    return re.search(r"https?://\S+", mail.body).group().removeprefix(SERVER)


def log_in(client: Client, email: str, password: str, **extra):
    return client.post("/accounts/login/", {"username": email, "password": password}, **extra)


# --- Password reset and change ------------------------------------------------


def test_alice_resets_her_password_through_the_mailed_link(client, alice, mailoutbox):
    response = client.post("/accounts/password/reset/", {"email": "Alice@Example.com"})
    assert response["Location"] == "/accounts/password/reset/sent/"
    assert [mail.to for mail in mailoutbox] == [["alice@example.com"]]

    form_page = client.get(mailed_link(mailoutbox[0]), follow=True)
    assert form_page.context["validlink"]
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done["Location"] == "/accounts/password/reset/done/"

    assert log_in(Client(), "alice@example.com", PASSWORD).status_code == 200
    assert log_in(Client(), "alice@example.com", NEW_PASSWORD)["Location"] == "/"
    assert not client.get(mailed_link(mailoutbox[0]), follow=True).context["validlink"]  # used once


def test_the_reset_form_does_not_reveal_whether_an_account_exists(client, alice, mailoutbox):
    known = client.post("/accounts/password/reset/", {"email": "alice@example.com"}, follow=True)
    mailoutbox.clear()
    unknown = client.post("/accounts/password/reset/", {"email": "nobody@example.com"}, follow=True)
    assert unknown.redirect_chain == known.redirect_chain
    assert unknown.content == known.content
    assert not mailoutbox


def test_changing_the_password_logs_out_alices_other_browser_but_not_this_one(alice):
    here, elsewhere = client_for(alice), client_for(alice)
    assert elsewhere.get("/").status_code == 200
    changed = here.post(
        "/accounts/password/change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed["Location"] == "/accounts/password/change/done/"
    assert here.get("/").status_code == 200
    assert elsewhere.get("/")["Location"].startswith("/accounts/login/")


def test_a_wrong_current_password_changes_nothing(alice_client):
    response = alice_client.post(
        "/accounts/password/change/",
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert "Your old password was entered incorrectly" in response.content.decode()
    assert User.objects.get().check_password(PASSWORD)


# --- Email verification -----------------------------------------------------------


@pytest.fixture
def dana(client, mailoutbox, django_capture_on_commit_callbacks):
    """Dana signs up and logs in; her browser is `client` and the verification mail is the last one."""
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/signup/", {"email": "dana@example.com", "password": PASSWORD})
    assert [mail.to for mail in mailoutbox] == [["dana@example.com"]]
    log_in(client, "dana@example.com", PASSWORD)
    return User.objects.get(email="dana@example.com")


def test_the_link_mailed_at_signup_verifies_the_address_and_the_banner_goes(client, dana, mailoutbox):
    assert not dana.email_verified
    assert "Verify your email to buy credits" in client.get("/").content.decode()
    verified = client.get(mailed_link(mailoutbox[0]), follow=True)
    assert "dana@example.com is verified" in verified.content.decode()
    assert "Verify your email to buy credits" not in verified.content.decode()
    dana.refresh_from_db()
    assert dana.email_verified


def test_a_tampered_verification_link_is_refused(client, dana, mailoutbox):
    response = client.get(mailed_link(mailoutbox[0])[:-3] + "xyz/")
    assert response.status_code == 400
    assert "This verification link is not valid" in response.content.decode()
    dana.refresh_from_db()
    assert not dana.email_verified


def test_an_expired_verification_link_is_refused_and_a_new_one_can_be_sent(
    client, dana, mailoutbox, settings, django_capture_on_commit_callbacks
):
    old = time.time() - timedelta(days=settings.EMAIL_VERIFICATION_TTL_DAYS, minutes=1).total_seconds()
    with django_capture_on_commit_callbacks(execute=True):
        with mock.patch("django.core.signing.time.time", return_value=old):  # a link mailed days ago
            client.post("/accounts/verify/resend/")
    response = client.get(mailed_link(mailoutbox[-1]))
    assert response.status_code == 410
    assert "This verification link has expired" in response.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        resent = client.post("/accounts/verify/resend/", follow=True)
    assert "We sent a new verification link to dana@example.com." in resent.content.decode()
    assert client.get(mailed_link(mailoutbox[-1])).status_code == 302
    dana.refresh_from_db()
    assert dana.email_verified


# --- Log-in throttling ------------------------------------------------------------


def fail_to_log_in(email: str, times: int, **extra) -> None:
    for _ in range(times):
        response = log_in(Client(), email, "wrong password", **extra)
        assert response.status_code == 200 and TOO_MANY not in response.content.decode()


def test_after_five_failures_even_the_right_password_is_refused_for_a_while(alice, charlie, settings):
    assert settings.LOGIN_MAX_FAILURES == 5
    fail_to_log_in("alice@example.com", 3)
    fail_to_log_in("ALICE@example.com", 2)  # addresses count case-insensitively
    with mock.patch("django.contrib.auth.forms.authenticate") as authenticate:
        response = log_in(Client(), "alice@example.com", PASSWORD)
    assert response.status_code == 429
    assert f"{TOO_MANY} 15 minutes." in response.content.decode()
    authenticate.assert_not_called()
    assert log_in(Client(), "charlie@example.com", PASSWORD)["Location"] == "/"


def test_the_lockout_ends_after_its_window(alice, settings):
    settings.LOGIN_LOCKOUT_SECONDS = 1
    fail_to_log_in("alice@example.com", 5)
    refused = log_in(Client(), "alice@example.com", PASSWORD)
    assert refused.status_code == 429 and f"{TOO_MANY} 1 minute." in refused.content.decode()
    time.sleep(1.1)
    assert log_in(Client(), "alice@example.com", PASSWORD)["Location"] == "/"


def test_a_successful_log_in_resets_the_count(alice):
    fail_to_log_in("alice@example.com", 4)
    assert log_in(Client(), "alice@example.com", PASSWORD)["Location"] == "/"
    fail_to_log_in("alice@example.com", 4)
    assert log_in(Client(), "alice@example.com", PASSWORD)["Location"] == "/"


def test_one_client_guessing_many_addresses_is_throttled_too(charlie, settings):
    settings.LOGIN_MAX_FAILURES = 2  # so 8 failures lock out the client's address
    for n in range(8):
        fail_to_log_in(f"guess{n}@example.com", 1, REMOTE_ADDR="203.0.113.9")
    assert log_in(Client(), "charlie@example.com", PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 429
    assert log_in(Client(), "charlie@example.com", PASSWORD, REMOTE_ADDR="198.51.100.1")["Location"] == "/"
