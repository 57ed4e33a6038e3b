"""Invitations: Alice (owner of Acme) invites Bob by email; Bob follows the mailed link and
joins. Charlie is an outsider, or a plain member of Acme where a test says so."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.invitations import InvitationRefused, invitation_accept, invitation_create, invitation_token
from accounts.models import Invitation, Membership, Team
from accounts.selectors import ACTIVE_TEAM_SESSION_KEY
from tests.conftest import at_once, client_for, page_text

PASSWORD = "correct horse battery"
SERVER = "http://testserver"


@pytest.fixture
def acme(alice):
    """Acme before Bob joins it: Alice is its owner (conftest's Acme has Bob in it already)."""
    team = Team.objects.create(name="Acme")
    Membership.objects.create(team=team, user=alice, role=Membership.Role.OWNER)
    return team


@pytest.fixture
def invite(alice, acme, mailoutbox, django_capture_on_commit_callbacks):
    """Invite an address to Acme as Alice through the team settings form; return the path
    of the link mailed to it."""
    alice_browser = client_for(alice, acme)

    def invite(email: str = "bob@example.com", role: str = "member") -> str:
        with django_capture_on_commit_callbacks(execute=True):
            response = alice_browser.post("/team/invitations/", {"email": email, "role": role})
        assert response.status_code == 302 and response["Location"] == "/team/"
        assert mailoutbox[-1].to == [email]
        link = re.search(r"https?://\S+", mailoutbox[-1].body).group()
        assert link.startswith(f"{SERVER}/accounts/invitations/")
        return link.removeprefix(SERVER)

    return invite


def test_bob_signs_up_from_the_mailed_link_and_joins_with_the_invited_role(
    invite, mailoutbox, acme, django_capture_on_commit_callbacks
):
    link = invite(role="admin")
    assert "Acme" in mailoutbox[-1].subject

    browser = Client()
    page = browser.get(link)
    assert page.status_code == 200
    text = page_text(page)
    assert "Join Acme" in text and "a…@example.com invited b…@example.com" in text and "<strong>admin</strong>" in text
    signup_url = page.context["signup_url"]
    assert not browser.get(signup_url).context["form"]["email"].value()  # not prefilled: the link may be anyone's
    with django_capture_on_commit_callbacks(execute=True):
        signed_up = browser.post(signup_url, {"email": "bob@example.com", "password": PASSWORD, "next": link}, follow=True)
    login_url = signed_up.context["login_url"]
    assert "Check your mail" in page_text(signed_up) and login_url.startswith("/accounts/login/?next=")
    logged_in = browser.post(login_url, {"username": "bob@example.com", "password": PASSWORD, "next": link})
    assert logged_in["Location"] == link
    assert "alice@example.com invited bob@example.com" in page_text(browser.get(link))  # the invitee, signed in

    joined = browser.post(link, follow=True)
    assert joined.redirect_chain == [("/", 302)]
    assert "You joined Acme as admin." in page_text(joined)
    membership = Membership.objects.get(team=acme, user__email="bob@example.com")
    assert membership.role == Membership.Role.ADMIN
    assert browser.session[ACTIVE_TEAM_SESSION_KEY] == acme.pk
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == membership.user and invitation.accepted_at is not None


def test_bob_with_an_account_logs_in_from_the_link_and_comes_back(invite, bob, acme):
    link = invite()
    browser = Client()
    login_url = browser.get(link).context["login_url"]
    login_page = browser.get(login_url)
    assert f'value="{link}"' in page_text(login_page)
    logged_in = browser.post(login_url, {"username": "bob@example.com", "password": PASSWORD, "next": link})
    assert logged_in["Location"] == link
    assert browser.post(link)["Location"] == "/"
    assert Membership.objects.filter(team=acme, user=bob, role=Membership.Role.MEMBER).exists()


def test_accepting_while_logged_out_sends_to_log_in(invite, acme):
    link = invite()
    response = Client().post(link)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    assert not Invitation.objects.get().accepted_at


def test_an_invitation_for_another_address_is_refused(invite, charlie, acme):
    link = invite()
    charlie_browser = client_for(charlie)
    for response in (charlie_browser.get(link), charlie_browser.post(link)):
        assert response.status_code == 403
        assert (
            "This invitation is for b…@example.com, but you are signed in as charlie@example.com"
            in page_text(response)
        )
    assert not acme.memberships.filter(user=charlie).exists()


def test_an_expired_invitation_is_gone_and_says_when_it_expired(invite, bob, acme):
    link = invite()
    Invitation.objects.update(expires_at=timezone.now() - timedelta(days=1))
    response = client_for(bob).post(link)
    assert response.status_code == 410
    text = page_text(response)
    assert "This invitation expired on" in text and "Ask alice@example.com for a new one." in text
    assert not acme.memberships.filter(user=bob).exists()


def test_a_signed_out_viewer_of_the_link_sees_no_full_address(invite, acme):
    """Issue #21: the link opened without signing in showed the inviter's and the invitee's
    full addresses (to anyone the mail was forwarded to)."""
    link = invite()
    browser = Client()
    page = browser.get(link)
    assert page.status_code == 200
    assert "a…@example.com invited b…@example.com to join" in page_text(page)
    signup = browser.get(page.context["signup_url"])
    for response in (page, signup, browser.get(page.context["login_url"])):
        assert "alice@example.com" not in page_text(response) and "bob@example.com" not in page_text(response)

    Invitation.objects.update(expires_at=timezone.now() - timedelta(days=1))
    expired = page_text(browser.get(link))
    assert "Ask a…@example.com for a new one." in expired and "alice@example.com" not in expired


def test_an_invitation_works_once(invite, bob, acme):
    link = invite()
    browser = client_for(bob)
    assert browser.post(link).status_code == 302
    again = browser.post(link)
    assert again.status_code == 410
    assert "already used" in page_text(again)
    assert acme.memberships.filter(user=bob).count() == 1


def test_a_withdrawn_invitation_is_refused(invite, alice, bob, acme):
    link = invite()
    invitation = Invitation.objects.get()
    revoked = client_for(alice, acme).post(f"/team/invitations/{invitation.pk}/revoke/", follow=True)
    assert "The invitation for bob@example.com is withdrawn." in page_text(revoked)
    response = client_for(bob).post(link)
    assert response.status_code == 410
    assert "withdrawn" in page_text(response)
    assert not acme.memberships.filter(user=bob).exists()


def test_a_tampered_link_is_refused(invite, bob, acme):
    link = invite()
    tampered = link.replace("/invitations/", "/invitations/x")
    response = client_for(bob).post(tampered)
    assert response.status_code == 404
    assert "This invitation link is not valid" in page_text(response)
    assert not acme.memberships.filter(user=bob).exists()


def test_a_member_cannot_invite(acme, charlie, mailoutbox):
    Membership.objects.create(team=acme, user=charlie, role=Membership.Role.MEMBER)
    response = client_for(charlie, acme).post("/team/invitations/", {"email": "bob@example.com", "role": "member"})
    assert response.status_code == 403
    assert not Invitation.objects.exists() and not mailoutbox


def test_an_admin_cannot_invite_an_owner_but_an_owner_can(acme, charlie, invite):
    Membership.objects.create(team=acme, user=charlie, role=Membership.Role.ADMIN)
    response = client_for(charlie, acme).post("/team/invitations/", {"email": "bob@example.com", "role": "owner"})
    assert response.status_code == 403
    assert "may not invite someone as owner" in page_text(response)
    assert not Invitation.objects.exists()
    invite(role="owner")
    assert Invitation.objects.get().role == Membership.Role.OWNER


def test_charlie_cannot_revoke_an_invitation_of_a_team_he_is_not_in(invite, charlie):
    invite()
    response = client_for(charlie).post(f"/team/invitations/{Invitation.objects.get().pk}/revoke/")
    assert response.status_code == 404
    assert Invitation.objects.get().revoked_at is None


@pytest.mark.parametrize(
    "email, message",
    [
        ("charlie@example.com", "charlie@example.com is already a member of Acme."),
        ("Bob@Example.com", "bob@example.com already has a pending invitation"),
        ("not-an-email", "Email: Enter a valid email address."),
    ],
)
def test_an_invitation_that_makes_no_sense_is_refused_with_a_message(
    acme, alice, charlie, invite, mailoutbox, email, message
):
    Membership.objects.create(team=acme, user=charlie, role=Membership.Role.MEMBER)
    invite("bob@example.com")
    response = client_for(alice, acme).post("/team/invitations/", {"email": email, "role": "member"}, follow=True)
    assert response.redirect_chain == [("/team/", 302)]
    assert message in page_text(response)
    assert Invitation.objects.count() == 1 and len(mailoutbox) == 1


def test_a_personal_team_cannot_be_shared(alice_client, mailoutbox):
    response = alice_client.post("/team/invitations/", {"email": "bob@example.com", "role": "member"}, follow=True)
    assert "A personal team cannot be shared" in page_text(response)
    assert not Invitation.objects.exists() and not mailoutbox


def test_an_accepted_invitation_cannot_be_accepted_again_by_the_service(invite, bob, acme):
    token = invite().rstrip("/").rsplit("/", 1)[1]
    invitation_accept(token=token, user=bob)
    with pytest.raises(InvitationRefused, match="already used"):
        invitation_accept(token=token, user=bob)
    assert acme.memberships.filter(user=bob).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_accepts_make_one_membership(acme, alice, bob):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL")
    alice_membership = acme.memberships.get(user=alice)
    invitation = invitation_create(
        team=acme, invited_by_membership=alice_membership, email=bob.email, role="member", base_url=SERVER
    )
    token = invitation_token(invitation)
    outcomes = [
        "joined" if isinstance(outcome, Membership) else getattr(outcome, "message", repr(outcome))
        for outcome in at_once(lambda: invitation_accept(token=token, user=bob), 4, timeout=10)
    ]
    assert sorted(outcomes) == ["This invitation was already used; each invitation works once."] * 3 + ["joined"]
    assert acme.memberships.filter(user=bob).count() == 1
