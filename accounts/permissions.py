"""Who may do what in a team: the one place that maps roles to permissions.

Views, API endpoints and services ask `require(membership, Perm.X)`; nothing else looks at
`Membership.role` to decide access.
"""

from dataclasses import dataclass
from enum import StrEnum
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import ApiKey, Membership, Team, User


class Perm(StrEnum):
    GENERATE = "generate"  # submit jobs
    VIEW = "view"  # see the team's gallery, jobs and videos
    MANAGE_MEMBERS = "manage_members"  # invite, remove, change roles
    MANAGE_KEYS = "manage_keys"  # create and revoke API keys
    RENAME_TEAM = "rename_team"
    MANAGE_BILLING = "manage_billing"
    MANAGE_BUDGETS = "manage_budgets"  # set, change and delete spend budgets
    DELETE_TEAM = "delete_team"
    MANAGE_LORAS = "manage_loras"  # upload and delete the team's LoRAs (generation.loras)


Role = Membership.Role

ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.OWNER: frozenset(Perm),
    Role.ADMIN: frozenset(
        {Perm.GENERATE, Perm.VIEW, Perm.MANAGE_MEMBERS, Perm.MANAGE_KEYS, Perm.RENAME_TEAM, Perm.MANAGE_LORAS,
         Perm.MANAGE_BUDGETS}
    ),
    Role.MEMBER: frozenset({Perm.GENERATE, Perm.VIEW}),
}

PERM_DESCRIPTIONS: dict[Perm, str] = {
    Perm.GENERATE: "generate videos",
    Perm.VIEW: "see this team's videos",
    Perm.MANAGE_MEMBERS: "manage members and invitations",
    Perm.MANAGE_KEYS: "manage API keys",
    Perm.RENAME_TEAM: "rename the team",
    Perm.MANAGE_BILLING: "manage billing",
    Perm.MANAGE_BUDGETS: "change budgets",
    Perm.DELETE_TEAM: "delete the team",
    Perm.MANAGE_LORAS: "upload or delete the team's LoRAs",
}


# An API key acts for its team with these permissions, whatever its maker's role. Only
# owners and admins make keys (MANAGE_KEYS), and they may manage LoRAs: so may their keys
# (POST /api/v1/loras is for scripts).
API_KEY_PERMISSIONS: frozenset[Perm] = frozenset({Perm.GENERATE, Perm.VIEW, Perm.MANAGE_LORAS})


@dataclass(frozen=True)
class Actor:
    """Who is acting on a team: a member through the browser, or an API key."""

    team: Team
    user: User | None
    membership: Membership | None = None
    api_key: ApiKey | None = None

    @property
    def permissions(self) -> frozenset[Perm]:
        if self.api_key is not None:
            return API_KEY_PERMISSIONS
        if self.membership is not None:
            return ROLE_PERMISSIONS.get(self.membership.role, frozenset())
        return frozenset()

    @property
    def description(self) -> str:
        if self.api_key is not None:
            return "API key"
        return f"role ({self.membership.get_role_display().lower()})" if self.membership else "role (non-member)"


def has_perm(who: "Membership | Actor | None", perm: Perm) -> bool:
    if who is None:
        return False
    if isinstance(who, Membership):
        who = Actor(team=who.team, user=who.user, membership=who)
    return perm in who.permissions


def require(who: "Membership | Actor | None", perm: Perm) -> None:
    """Raise PermissionDenied (403) naming what the role may not do."""
    if not has_perm(who, perm):
        if isinstance(who, Actor):
            description = who.description
        else:
            description = f"role ({who.get_role_display().lower()})" if who else "role (non-member)"
        raise PermissionDenied(f"Your {description} may not {PERM_DESCRIPTIONS[perm]}.")


def roles_assignable_by(membership: Membership | None) -> list[str]:
    """Owners may grant any role; admins may grant admin and member, never owner."""
    if has_perm(membership, Perm.DELETE_TEAM):
        return [Role.OWNER, Role.ADMIN, Role.MEMBER]
    if has_perm(membership, Perm.MANAGE_MEMBERS):
        return [Role.ADMIN, Role.MEMBER]
    return []


def is_staff_member(user, *, via_api_key: bool = False) -> bool:
    """Counts as Framecast staff (the operator dashboard, the moderation queue, the
    verifier's staff details): a signed-in, active staff user in the browser. A request
    made with an API key never does, whoever made the key: a leaked key must not open
    every team's data."""
    return not via_api_key and bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_staff)


def sends_api_key(request) -> bool:
    """The request carries `Authorization: Bearer ...` (DRF sets `request.auth` only in
    its own views, so the header itself is what the HTML views see)."""
    return request.headers.get("Authorization", "").lower().startswith("bearer ")


def staff_required(view):
    """The one staff funnel for every /staff/ page. Anyone else gets 404, as if the page
    did not exist: its existence is not confirmed to outsiders."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_staff_member(request.user, via_api_key=sends_api_key(request)):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapped
