"""Which team a request acts as: one funnel for the HTML views, the API and the websocket
consumer. Every team-owned object is reached through the team this returns."""

from .models import ApiKey, Membership, Team, User
from .permissions import Actor, Perm, require

ACTIVE_TEAM_SESSION_KEY = "active_team_id"


def active_membership(user: User, session) -> Membership | None:
    """The user's membership in the team they are working in: the one chosen in the session
    if they still belong to it, otherwise their personal team (made now for a user who has
    no team at all). None for anonymous users. Read on every request, so a role change or
    a removal takes effect at once."""
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.filter(user=user).select_related("team")
    chosen = session.get(ACTIVE_TEAM_SESSION_KEY) if session is not None else None
    membership = memberships.filter(team_id=chosen).first() if chosen is not None else None
    if membership is None:
        membership = memberships.filter(team__personal_owner=user).first() or memberships.order_by("pk").first()
    if membership is None:
        # Created here, where every page, API call and websocket asks, so that no path
        # (createsuperuser, the admin, a future importer) leaves a user without a team.
        from .services import personal_team_ensure  # services import teams, which import this module

        membership = personal_team_ensure(user=user)
    membership.user = user  # the request's user, already loaded (a permission check reads it)
    return membership


def active_team(user: User, session) -> Team | None:
    membership = active_membership(user, session)
    return membership.team if membership else None


def teams_for_user(user: User):
    return Team.objects.filter(memberships__user=user).order_by("personal_owner", "name")


def request_membership(request) -> Membership | None:
    """`active_membership` for this request, looked up once per request."""
    if not hasattr(request, "_framecast_membership"):
        request._framecast_membership = active_membership(request.user, getattr(request, "session", None))
    return request._framecast_membership


def request_actor(request) -> Actor | None:
    """Who acts in this request: an API key (DRF sets `request.auth`) for its team, or the
    signed-in user in their active team. None if neither."""
    key = getattr(request, "auth", None)
    if isinstance(key, ApiKey):
        return Actor(team=key.team, user=key.created_by, api_key=key)
    membership = request_membership(request)
    if membership is None:
        return None
    return Actor(team=membership.team, user=membership.user, membership=membership)


def request_actor_allowed(request, perm: Perm) -> Actor:
    """The request's actor, who must hold `perm` in its team (else PermissionDenied): the
    first line of every API view."""
    actor = request_actor(request)
    require(actor, perm)
    return actor
