"""Sign up, log in, log out; every user gets a personal team."""


import re

import pytest
from django.test import Client

from accounts.models import Membership, User

pytestmark = pytest.mark.django_db


def test_signup_creates_a_user_with_a_personal_team_who_then_logs_in(client):
    response = client.post("/accounts/signup/", {"email": "Dana@Example.com", "password": "a long passphrase 42"})
    assert response.status_code == 302 and response["Location"] == "/accounts/signup/sent/"
    user = User.objects.get()
    assert user.email == "dana@example.com"
    membership = Membership.objects.get(user=user)
    assert membership.team == user.personal_team
    assert membership.role == Membership.Role.OWNER
    assert client.get("/").status_code == 302  # not signed in by the sign-up: that would tell a taken address
    login = client.post("/accounts/login/", {"username": "dana@example.com", "password": "a long passphrase 42"})
    assert login.status_code == 302 and client.get("/").status_code == 200


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"email": "not-an-email", "password": "a long passphrase 42"}, "email", "Enter a valid email address"),
        ({"email": "e@example.com", "password": "short"}, "password", "too short"),
        ({"email": "e@example.com", "password": ""}, "password", "required"),
    ],
)
def test_signup_errors_name_the_field(client, alice, data, field, message):
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert User.objects.count() == 1  # only Alice


def test_signing_up_with_a_taken_address_answers_as_for_a_new_one_and_mails_its_owner(
    alice, mailoutbox, django_capture_on_commit_callbacks
):
    """Issue #21: sign-up said "An account with this email already exists", telling anyone
    who has an account. Now only the mail to the address says so, as password reset does."""

    def sign_up(email):
        browser = Client()
        with django_capture_on_commit_callbacks(execute=True):
            response = browser.post(
                "/accounts/signup/", {"email": email, "password": "a long passphrase 42", "next": "/gallery/"}, follow=True
            )
        # The page as a person sees it, without the per-response CSP nonce.
        return response, re.sub(r'nonce="[^"]*"', "", response.content.decode()), browser

    new, new_page, _ = sign_up("dana@example.com")
    taken, taken_page, attacker = sign_up("Alice@Example.com")
    assert (new.status_code, new.redirect_chain) == (taken.status_code, taken.redirect_chain)
    assert new.redirect_chain == [("/accounts/signup/sent/?next=%2Fgallery%2F", 302)]
    assert new_page == taken_page and "Check your mail" in taken_page

    assert [mail.to for mail in mailoutbox] == [["dana@example.com"], ["alice@example.com"]]
    notice = mailoutbox[1]
    assert notice.subject == "Someone tried to sign up with your address"
    assert "Someone tried to create a Framecast account with this address (alice@example.com)" in notice.body
    assert "http://testserver/accounts/password/reset/" in notice.body
    # No second account, and Alice's password is still hers alone.
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1
    alice.refresh_from_db()
    assert alice.check_password("correct horse battery")
    tried = attacker.post("/accounts/login/", {"username": "alice@example.com", "password": "a long passphrase 42"})
    assert tried.status_code == 200 and attacker.get("/").status_code == 302


def test_login_and_logout(client, alice):
    response = client.post("/accounts/login/", {"username": "alice@example.com", "password": "correct horse battery"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused(client, alice):
    response = client.post("/accounts/login/", {"username": "alice@example.com", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct email and password" in response.content.decode()


def test_an_operator_made_by_createsuperuser_can_open_every_team_page(client):
    """`createsuperuser` skips sign-up; the operator still gets a personal team, so the
    studio, gallery, team and billing pages work instead of a 403 for a non-member."""
    from django.core.management import call_command

    call_command("createsuperuser", interactive=False, email="ops@framecast.example", verbosity=0)
    operator = User.objects.get()
    assert not Membership.objects.filter(user=operator).exists(), "no team yet"
    client.force_login(operator)
    for path in ("/", "/gallery/", "/team/", "/billing/"):
        response = client.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code}"
    [membership] = Membership.objects.filter(user=operator)
    assert (membership.team, membership.role) == (operator.personal_team, Membership.Role.OWNER)
    assert operator.personal_team.name == "ops's team"


def test_a_user_made_in_the_admin_gets_one_personal_team_however_many_requests(client):
    user = User.objects.create_user(email="erin@example.com", password="correct horse battery")
    client.force_login(user)
    for _ in range(3):
        assert client.get("/gallery/").status_code == 200
    assert Membership.objects.filter(user=user).count() == 1


@pytest.mark.services
def test_two_first_requests_at_once_make_one_personal_team(transactional_db):
    from accounts.services import personal_team_ensure

    from .conftest import at_once

    user = User.objects.create_user(email="erin@example.com", password="correct horse battery")
    outcomes = at_once(lambda: personal_team_ensure(user=user).team_id, 2)
    assert len(set(outcomes)) == 1 and all(isinstance(team_id, int) for team_id in outcomes), outcomes
    assert Membership.objects.filter(user=user).count() == 1
