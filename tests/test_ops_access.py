"""The staff dashboard exists only for staff: every /staff/ URL answers 404 to anonymous
visitors, to signed-in users who are not staff (team owners included), to API keys (even
a staff member's) and to deactivated staff; staff get every page."""

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.api_keys import apikey_create
from accounts.models import Membership, User
from accounts.services import user_signup
from billing.models import CreditEntry

from .conftest import client_for

pytestmark = pytest.mark.django_db


def ops_routes():
    """Every named route of the ops URLconf, found by walking it (new routes are covered)."""
    (resolver,) = [r for r in get_resolver().url_patterns if isinstance(r, URLResolver) and r.namespace == "ops"]
    return sorted(f"ops:{p.name}" for p in resolver.url_patterns if isinstance(p, URLPattern))


def url_of(name: str, team) -> str:
    kwargs = {"team_id": team.pk} if name.startswith("ops:team") else {}
    return reverse(name, kwargs=kwargs)


@pytest.fixture
def staff(db):
    """Sam, an operator: a user with is_staff (and a personal team, like everyone)."""
    user = user_signup(email="sam@framecast.example", password="correct horse battery")
    User.objects.filter(pk=user.pk).update(is_staff=True)
    user.refresh_from_db()
    return user


def test_the_walk_finds_the_dashboard_routes():
    assert {"ops:money", "ops:operations", "ops:customers", "ops:team", "ops:team_credits", "ops:export_jobs",
            "ops:export_ledger", "ops:audit", "ops:moderation", "ops:moderation_decide"} <= set(ops_routes())


@pytest.mark.parametrize("name", ops_routes())
def test_everyone_but_staff_gets_404_on_every_dashboard_url(name, alice, charlie, staff):
    team = alice.personal_team
    url = url_of(name, team)
    _, alice_key = apikey_create(membership=Membership.objects.get(user=alice, team=team), name="ci")
    _, staff_key = apikey_create(membership=Membership.objects.get(user=staff), name="staff ci")
    inactive = User.objects.create_user(email="gone@framecast.example", password="x" * 12, is_staff=True, is_active=False)
    callers = {
        "anonymous": (Client(), {}),
        "team owner (not staff)": (client_for(alice), {}),
        "another user": (client_for(charlie), {}),
        "an API key": (Client(), {"HTTP_AUTHORIZATION": f"Bearer {alice_key}"}),
        "a staff member's API key": (Client(), {"HTTP_AUTHORIZATION": f"Bearer {staff_key}"}),
        "staff session sending an API key": (client_for(staff), {"HTTP_AUTHORIZATION": f"Bearer {staff_key}"}),
        "deactivated staff": (client_for(inactive), {}),
    }
    for who, (client, headers) in callers.items():
        for method in ("get", "post"):
            response = getattr(client, method)(url, {"amount": "1000", "reason": "x", "from": "2026-01-01", "to": "2026-01-02"}, **headers)
            assert response.status_code == 404, f"{who} {method.upper()} {url}: {response.status_code}"
    assert not CreditEntry.objects.filter(kind=CreditEntry.Kind.ADJUSTMENT).exists(), "no POST got through"


@pytest.mark.parametrize("name", [n for n in ops_routes() if n not in {
    "ops:team_credits", "ops:team_suspend", "ops:team_restore", "ops:moderation_decide", "ops:moderation_suspension"}])
def test_staff_get_every_page(name, alice, staff):
    url = url_of(name, alice.personal_team)
    response = client_for(staff).get(url, {"q": "alice", "from": "2026-01-01", "to": "2026-01-31"})
    assert response.status_code == 200, url


def test_the_staff_link_shows_in_the_navigation_for_staff_only(alice, staff):
    assert b'href="/staff/"' in client_for(staff).get("/staff/customers/").content
    assert b'href="/staff/"' not in client_for(alice).get("/").content
