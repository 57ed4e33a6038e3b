"""Team actions: create, rename, switch, leave, delete, and manage members' roles.

Each takes the acting membership and checks its permission here, so views stay thin and
the rules hold for every caller."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404

from core.text import is_blank

from .models import Membership, Team, User, new_webhook_secret
from .permissions import Perm, require, roles_assignable_by
from .selectors import ACTIVE_TEAM_SESSION_KEY

Role = Membership.Role
MAX_TEAM_NAME = 100


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if is_blank(name):  # zero-width characters alone show no name either
        raise ValidationError({"name": "Team name is required."})
    if len(name) > MAX_TEAM_NAME:
        raise ValidationError({"name": f"Team name may be at most {MAX_TEAM_NAME} characters."})
    return name


@transaction.atomic
def team_create(*, user: User, name: str, personal: bool = False) -> Team:
    """A team with `user` as its owner; `personal`: the user's own, made at sign-up."""
    team = Team.objects.create(name=_clean_name(name), personal_owner=user if personal else None)
    Membership.objects.create(team=team, user=user, role=Role.OWNER)
    return team


def team_rename(*, membership: Membership, name: str) -> Team:
    require(membership, Perm.RENAME_TEAM)
    team = membership.team
    team.name = _clean_name(name)
    team.save(update_fields=["name"])
    return team


def team_switch(*, user: User, session, team_id: int) -> Team:
    """Make `team_id` the active team; 404 unless the user belongs to it."""
    membership = Membership.objects.filter(user=user, team_id=team_id).select_related("team").first()
    if membership is None:
        raise Http404("No such team.")
    session[ACTIVE_TEAM_SESSION_KEY] = membership.team_id
    return membership.team


def _other_owners(membership: Membership) -> bool:
    return (
        Membership.objects.filter(team_id=membership.team_id, role=Role.OWNER).exclude(pk=membership.pk).exists()
    )


@transaction.atomic
def team_leave(*, membership: Membership) -> None:
    membership = Membership.objects.select_for_update().select_related("team").get(pk=membership.pk)
    if membership.team.personal_owner_id == membership.user_id:
        raise ValidationError("You cannot leave your personal team.")
    if membership.role == Role.OWNER and not _other_owners(membership):
        raise ValidationError("You are the team's only owner: make another member owner first, or delete the team.")
    membership.delete()


@transaction.atomic
def team_delete(*, membership: Membership) -> None:
    require(membership, Perm.DELETE_TEAM)
    team = membership.team
    if team.personal_owner_id is not None:
        raise ValidationError("A personal team cannot be deleted.")
    team.delete()  # its jobs and, once this commits, their files (generation.signals)


def _team_member(membership: Membership, target_id: int) -> Membership:
    """A membership of the actor's own team, or 404: ids of other teams' members leak nothing."""
    target = Membership.objects.select_for_update().filter(pk=target_id, team_id=membership.team_id).first()
    if target is None:
        raise Http404("No such member.")
    return target


@transaction.atomic
def member_set_role(*, membership: Membership, target_id: int, role: str) -> Membership:
    require(membership, Perm.MANAGE_MEMBERS)
    target = _team_member(membership, target_id)
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Role.values)}."})
    assignable = roles_assignable_by(membership)
    if role not in assignable or (target.role == Role.OWNER and Role.OWNER not in assignable):
        raise PermissionDenied("Only an owner can make or unmake owners.")
    if target.role == Role.OWNER and role != Role.OWNER and not _other_owners(target):
        raise ValidationError("A team needs at least one owner: make someone else owner first.")
    target.role = role
    target.save(update_fields=["role"])
    return target


@transaction.atomic
def member_remove(*, membership: Membership, target_id: int) -> None:
    require(membership, Perm.MANAGE_MEMBERS)
    target = _team_member(membership, target_id)
    if target.pk == membership.pk:
        raise ValidationError("To remove yourself, leave the team.")
    if target.role == Role.OWNER and Role.OWNER not in roles_assignable_by(membership):
        raise PermissionDenied("Only an owner can remove an owner.")
    if target.team.personal_owner_id == target.user_id:
        raise ValidationError("The owner of a personal team cannot be removed from it.")
    target.delete()


def team_rotate_webhook_secret(*, membership: Membership) -> Team:
    """A new signing secret for the team's webhooks; the old one stops verifying at once."""
    require(membership, Perm.MANAGE_KEYS)
    team = membership.team
    team.webhook_secret = new_webhook_secret()
    team.save(update_fields=["webhook_secret"])
    return team
