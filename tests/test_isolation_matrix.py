"""The tenant-isolation matrix: every URL that takes an object id, for every kind of caller.

Routes are enumerated from the URLconf, so a route added later without an entry here
fails `test_every_route_with_an_id_is_in_the_matrix` until someone states who may use it.
For each route: an outsider (Charlie, and Charlie's API key on API routes) gets 404, never
the object and never a 403 that confirms it exists; a member without the role gets 403;
the owner gets through.
"""

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.api_keys import apikey_create
from accounts.models import Invitation, Membership
from accounts.permissions import ROLE_PERMISSIONS, Perm
from accounts.services import user_signup
from generation.models import Job, Lora

from .conftest import client_for, on_plan

pytestmark = pytest.mark.django_db

# Routes whose parameter is a signed token, not an object id; each has its own tests.
TOKEN_ROUTES = {
    "accounts:invitation": "tests/test_invitations.py",
    "accounts:verify_email": "tests/test_account_hygiene.py",
    "accounts:password_reset_confirm": "tests/test_account_hygiene.py",
    # Public share links: the token is the key (unguessable, revocable).
    "generation:shared": "tests/test_share.py",
    # The autoscaler's endpoint: an operator's bearer token, no team's data.
    "pool-scaling": "tests/test_scaling.py",
    "generation:shared_video": "tests/test_share.py",
    "generation:shared_poster": "tests/test_share.py",
    "safety:report": "tests/test_moderation_reports.py",
}

# Staff-only routes (the operator dashboard): 404 for everyone but staff, owners included;
# each is walked for non-staff users and API keys in its own test.
STAFF_ROUTES = {
    "ops:team": "tests/test_ops_access.py",
    "ops:team_credits": "tests/test_ops_access.py",
    "ops:team_suspend": "tests/test_ops_access.py",
    "ops:team_restore": "tests/test_ops_access.py",
}


@dataclass
class Route:
    method: str
    make: str  # the world's object whose id the route takes
    perm: Perm = Perm.VIEW  # what the caller's role needs
    data: dict = field(default_factory=dict)
    api: bool = False
    owner_status: int = 200
    # The OpenAI-compatible routes take API keys only, and name a 404 in OpenAI's words.
    key_only: bool = False
    not_found_type: str = "not_found"


MATRIX = {
    "generation:job_detail": Route("GET", "job"),
    "generation:job_video": Route("GET", "finished_job"),
    "generation:job_poster": Route("GET", "finished_job"),
    "api:video": Route("GET", "job", api=True),
    "api:video_content": Route("GET", "finished_job", api=True),
    "generation:job_cancel": Route("POST", "job", Perm.GENERATE, owner_status=302),
    "api:video_cancel": Route("POST", "job", Perm.GENERATE, api=True),
    "api:video_thumbnail": Route("GET", "finished_job", api=True),
    "teams:switch": Route("POST", "team", owner_status=302),
    "teams:member_role": Route("POST", "dave_membership", Perm.MANAGE_MEMBERS, {"role": "admin"}, owner_status=302),
    "teams:member_remove": Route("POST", "dave_membership", Perm.MANAGE_MEMBERS, owner_status=302),
    "teams:key_revoke": Route("POST", "key", Perm.MANAGE_KEYS, owner_status=302),
    "invitations:revoke": Route("POST", "invitation", Perm.MANAGE_MEMBERS, owner_status=302),
    "generation:job_delete": Route("POST", "finished_job", Perm.GENERATE, owner_status=302),
    "generation:job_share": Route("POST", "finished_job", Perm.GENERATE, {"share": "on"}, owner_status=302),
    "api:video_remix": Route("POST", "finished_job", Perm.GENERATE, {"prompt": "again"}, api=True, owner_status=201),
    "api:video_spritesheet": Route("GET", "finished_job", api=True),
    # The world's videos are made at the standard speed: already full quality, 409.
    "api:video_full_quality": Route("POST", "finished_job", Perm.GENERATE, api=True, owner_status=409),
    "generation:job_full_quality": Route("POST", "finished_job", Perm.GENERATE, owner_status=302),
    "api:lora": Route("GET", "lora", api=True),
    "generation:lora_delete": Route("POST", "lora", Perm.MANAGE_LORAS, owner_status=302),
    "api:budget": Route("GET", "budget", api=True),  # a team budget: every member sees it
    "billing:budget_change": Route("POST", "budget", Perm.MANAGE_BUDGETS, {"amount_credits": "7"}, owner_status=302),
    "billing:budget_remove": Route("POST", "budget", Perm.MANAGE_BUDGETS, owner_status=302),
    "openai:video": Route("GET", "job", api=True, key_only=True, not_found_type="invalid_request_error"),
    "openai:video_content": Route(
        "GET", "finished_job", api=True, key_only=True, not_found_type="invalid_request_error"
    ),
    "openai:video_remix": Route(
        "POST", "finished_job", Perm.GENERATE, {"prompt": "again"}, api=True, key_only=True,
        not_found_type="invalid_request_error",
    ),
}


def routes_with_parameters(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from routes_with_parameters(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern) and entry.pattern.converters:
            yield f"{namespace}{entry.name}", prefix + str(entry.pattern)


def test_every_route_with_an_id_is_in_the_matrix():
    unlisted = [
        (name, pattern)
        for name, pattern in routes_with_parameters()
        if name not in MATRIX and name not in TOKEN_ROUTES and name not in STAFF_ROUTES and not name.startswith("admin:")
    ]
    assert unlisted == [], "Add these routes to the isolation matrix (who may use them?)"
    assert set(MATRIX) <= {name for name, _ in routes_with_parameters()}, "stale matrix entries"


@pytest.fixture
def world(alice, bob, charlie, acme):
    """Acme (Alice owner, Bob member, more members made as needed) and Charlie outside it."""
    alice_membership = Membership.objects.get(team=acme, user=alice)
    common = dict(
        team=acme, created_by=alice, prompt="acme launch", seed=1, width=64, height=64, num_frames=9, fps=8,
        steps=4, guidance=5.0, model_name="framecast-tiny", pool="cpu",
    )

    def finished_job():
        job = Job(**common)
        job.video.save("acme.mp4", ContentFile(b"mp4"), save=False)
        job.poster.save("acme.jpg", ContentFile(b"jpg"), save=False)
        job.spritesheet.save("acme-sheet.jpg", ContentFile(b"jpg"), save=False)
        job.state = Job.State.SUCCEEDED
        job.save()
        return job

    def member():
        n = Membership.objects.count()
        user = user_signup(email=f"dave{n}@example.com", password="correct horse battery")
        return Membership.objects.create(team=acme, user=user, role=Membership.Role.MEMBER)

    def budget():
        from billing.ledger import account_for_team
        from billing.models import Budget

        Budget.objects.filter(account__team=acme).delete()  # one team budget a period: the caller's own
        return Budget.objects.create(account=account_for_team(acme), scope="team", amount_credits=10, period="day",
                                     thresholds=[50])

    _, charlie_secret = apikey_create(membership=Membership.objects.get(user=charlie), name="charlie ci")
    on_plan(acme, "pro")  # API access and credits, so that remixes go through
    return {
        # Each caller gets a fresh object, so one caller's change cannot decide another's answer.
        "objects": {
            "job": lambda: Job.objects.create(**common),
            "finished_job": finished_job,
            "team": lambda: acme,
            "dave_membership": member,
            "budget": budget,
            "key": lambda: apikey_create(membership=alice_membership, name="acme ci")[0],
            "lora": lambda: Lora.objects.create(
                team=acme, model_name="framecast-tiny", name=f"ink {Lora.objects.count()}",
                file="teams/acme/loras/none.safetensors", sha256="0" * 64, size_bytes=1, rank=4,
            ),
            "invitation": lambda: Invitation.objects.create(
                team=acme,
                email=f"erin{Invitation.objects.count()}@example.com",
                invited_by=alice,
                expires_at=timezone.now() + timedelta(days=1),
            ),
        },
        "alice": client_for(alice, acme),
        "bob": client_for(bob, acme),
        "charlie": client_for(charlie),
        "charlie_key": charlie_secret,
        # Members may not make keys: key-only routes are checked for the team's key.
        "keys": {"alice": apikey_create(membership=alice_membership, name="alice key")[1]},
    }


def call(client, route: Route, name: str, make, **headers):
    url = reverse(name, args=[make().pk])
    if route.method == "GET":
        return client.get(url, **headers)
    if route.api:
        return client.post(url, route.data, content_type="application/json", **headers)
    return client.post(url, route.data, **headers)


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_outsiders_get_404_members_without_the_role_403_and_owners_through(world, name, client):
    route = MATRIX[name]
    obj = world["objects"][route.make]

    def as_member(who):
        if route.key_only:
            return call(client, route, name, obj, HTTP_AUTHORIZATION=f"Bearer {world['keys'][who]}")
        return call(world[who], route, name, obj)

    if not route.key_only:
        assert call(world["charlie"], route, name, obj).status_code == 404, "Charlie (another team)"
    if route.api:
        charlie_key = call(client, route, name, obj, HTTP_AUTHORIZATION=f"Bearer {world['charlie_key']}")
        assert charlie_key.status_code == 404, "Charlie's API key"
        assert charlie_key.json()["error"]["type"] == route.not_found_type

    if not route.key_only:
        bob_may = route.perm in ROLE_PERMISSIONS[Membership.Role.MEMBER]
        bob_status = as_member("bob").status_code
        if bob_may:
            assert bob_status == route.owner_status, "Bob (member) may use this route"
        else:
            assert bob_status == 403, "Bob (member) lacks the role"

    assert as_member("alice").status_code == route.owner_status, "Alice (owner)"


def test_anonymous_visitors_get_nothing(world, client):
    for name, route in MATRIX.items():
        response = call(client, route, name, world["objects"][route.make])
        expected = {401} if route.api else {302}
        assert response.status_code in expected, name
        if not route.api:
            assert response["Location"].startswith("/accounts/login/")


def test_every_websocket_route_is_covered():
    """Websocket routes live outside the URLconf; each must have an isolation test."""
    from generation.routing import websocket_urlpatterns

    covered = {"ws/jobs/<uuid:job_id>/": "tests/test_tenant_isolation.py::test_websocket_is_for_the_jobs_team_only"}
    assert {str(pattern.pattern) for pattern in websocket_urlpatterns} == set(covered)
