"""Who may do what in a team: the one place that maps roles to permissions.

Views, API endpoints and services ask `require(membership, Perm.X)`; nothing else looks at
`Membership.role` to decide access.
"""

from enum import StrEnum

from django.core.exceptions import PermissionDenied

from .models import Membership


class Perm(StrEnum):
    GENERATE = "generate"  # submit jobs
    VIEW = "view"  # see the team's gallery, jobs and videos
    MANAGE_MEMBERS = "manage_members"  # invite, remove, change roles
    MANAGE_KEYS = "manage_keys"  # create and revoke API keys
    RENAME_TEAM = "rename_team"
    MANAGE_BILLING = "manage_billing"
    DELETE_TEAM = "delete_team"


Role = Membership.Role

ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.OWNER: frozenset(Perm),
    Role.ADMIN: frozenset({Perm.GENERATE, Perm.VIEW, Perm.MANAGE_MEMBERS, Perm.MANAGE_KEYS, Perm.RENAME_TEAM}),
    Role.MEMBER: frozenset({Perm.GENERATE, Perm.VIEW}),
}

PERM_DESCRIPTIONS: dict[Perm, str] = {
    Perm.GENERATE: "generate videos",
    Perm.VIEW: "see this team's videos",
    Perm.MANAGE_MEMBERS: "manage members and invitations",
    Perm.MANAGE_KEYS: "manage API keys",
    Perm.RENAME_TEAM: "rename the team",
    Perm.MANAGE_BILLING: "manage billing",
    Perm.DELETE_TEAM: "delete the team",
}


def has_perm(membership: Membership | None, perm: Perm) -> bool:
    return membership is not None and perm in ROLE_PERMISSIONS.get(membership.role, frozenset())


def require(membership: Membership | None, perm: Perm) -> None:
    """Raise PermissionDenied (403) naming what the role may not do."""
    if not has_perm(membership, perm):
        role = membership.get_role_display().lower() if membership else "non-member"
        raise PermissionDenied(f"Your role ({role}) may not {PERM_DESCRIPTIONS[perm]}.")


def roles_assignable_by(membership: Membership | None) -> list[str]:
    """Owners may grant any role; admins may grant admin and member, never owner."""
    if has_perm(membership, Perm.DELETE_TEAM):
        return [Role.OWNER, Role.ADMIN, Role.MEMBER]
    if has_perm(membership, Perm.MANAGE_MEMBERS):
        return [Role.ADMIN, Role.MEMBER]
    return []
