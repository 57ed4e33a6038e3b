"""Team pages: settings (rename, members and roles, invitations, leave, delete), the team
list and switcher, and API keys. Each view acts on the active team through services that
check the role."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from core.redirects import safe_next
from core.text import whole_number

from . import api_keys, teams
from .invitations import pending_invitations
from .models import Membership
from .permissions import Perm, has_perm, require, roles_assignable_by
from .selectors import request_membership, teams_for_user


def error_text(error: ValidationError) -> str:
    """A validation error as one sentence for a flash message."""
    return " ".join(error.messages)


# Ten years: beyond it "never" says the same, and a date past year 9999 cannot exist.
MAX_KEY_EXPIRY_DAYS = 3650


def _expiry_from_days(raw: str):
    """'' → never; a whole number of days from 1 to MAX_KEY_EXPIRY_DAYS → that far from now."""
    raw = raw.strip()
    if not raw:
        return None
    days = whole_number(raw, max_digits=6)
    if days is None or not 1 <= days <= MAX_KEY_EXPIRY_DAYS:
        raise ValidationError({
            "expires_in_days": f"Expiry must be a whole number of days from 1 to {MAX_KEY_EXPIRY_DAYS}, or empty for never."
        })
    return timezone.now() + timedelta(days=days)


def _back_to_settings(request, error: ValidationError | None = None, success: str | None = None):
    if error is not None:
        messages.error(request, error_text(error))
    elif success:
        messages.success(request, success)
    return redirect("teams:settings")


@login_required
@require_http_methods(["GET"])
def team_settings(request):
    membership = request_membership(request)
    require(membership, Perm.VIEW)
    team = membership.team
    context = {
        "membership": membership,
        "team": team,
        "members": team.memberships.select_related("user").order_by("created_at"),
        "invitations": pending_invitations(team),
        "assignable_roles": [(role, Membership.Role(role).label) for role in roles_assignable_by(membership)],
        "can": {perm.value: has_perm(membership, perm) for perm in Perm},
        "is_personal": team.personal_owner_id is not None,
    }
    return render(request, "teams/settings.html", context)


@login_required
@require_POST
def team_rename(request):
    try:
        team = teams.team_rename(membership=request_membership(request), name=request.POST.get("name", ""))
    except ValidationError as error:
        return _back_to_settings(request, error)
    return _back_to_settings(request, success=f"Team renamed to {team.name}.")


@login_required
@require_POST
def team_leave(request):
    membership = request_membership(request)
    try:
        teams.team_leave(membership=membership)
    except ValidationError as error:
        return _back_to_settings(request, error)
    messages.success(request, f"You left {membership.team.name}.")
    return redirect("generation:studio")


@login_required
@require_POST
def team_delete(request):
    membership = request_membership(request)
    require(membership, Perm.DELETE_TEAM)
    if request.POST.get("confirm_name", "").strip() != membership.team.name:
        return _back_to_settings(request, ValidationError("Type the team's name exactly to confirm deletion."))
    try:
        teams.team_delete(membership=membership)
    except ValidationError as error:
        return _back_to_settings(request, error)
    messages.success(request, f"Team {membership.team.name} was deleted.")
    return redirect("generation:studio")


@login_required
@require_POST
def member_role(request, membership_id: int):
    try:
        target = teams.member_set_role(
            membership=request_membership(request), target_id=membership_id, role=request.POST.get("role", "")
        )
    except ValidationError as error:
        return _back_to_settings(request, error)
    return _back_to_settings(request, success=f"{target.user.email} is now {target.get_role_display().lower()}.")


@login_required
@require_POST
def member_remove(request, membership_id: int):
    try:
        teams.member_remove(membership=request_membership(request), target_id=membership_id)
    except ValidationError as error:
        return _back_to_settings(request, error)
    return _back_to_settings(request, success="Member removed.")


@login_required
@require_http_methods(["GET", "POST"])
def team_list(request):
    """Every team the user belongs to, and a form to create one."""
    error = None
    if request.method == "POST":
        try:
            team = teams.team_create(user=request.user, name=request.POST.get("name", ""))
        except ValidationError as exc:
            error = error_text(exc)
        else:
            teams.team_switch(user=request.user, session=request.session, team_id=team.pk)
            messages.success(request, f"Team {team.name} created. You are now working in it.")
            return redirect("teams:settings")
    active = request_membership(request)
    context = {"teams": teams_for_user(request.user), "active_team": active.team if active else None, "error": error}
    return render(request, "teams/list.html", context, status=400 if error else 200)


@login_required
@require_POST
def team_switch(request, team_id: int):
    team = teams.team_switch(user=request.user, session=request.session, team_id=team_id)
    messages.success(request, f"You are now working in {team.name}.")
    return redirect(safe_next(request) or "generation:studio")


@login_required
@require_http_methods(["GET", "POST"])
def key_list(request):
    """The team's API keys with their usage; a POST makes a key and shows its secret once
    (rendered into this response only: never stored, never put in the session)."""
    membership = request_membership(request)
    require(membership, Perm.MANAGE_KEYS)
    new_secret = error = None
    status = 200
    if request.method == "POST":
        try:
            _, new_secret = api_keys.apikey_create(
                membership=membership,
                name=request.POST.get("name", ""),
                expires_at=_expiry_from_days(request.POST.get("expires_in_days", "")),
            )
            status = 201
        except ValidationError as exc:
            error, status = error_text(exc), 400
    context = {
        "team": membership.team,
        "keys": api_keys.apikeys_with_usage(membership.team),
        "new_secret": new_secret,
        "error": error,
        "deliveries": membership.team.webhook_deliveries.prefetch_related("attempt_log")[:20],
    }
    response = render(request, "teams/keys.html", context, status=status)
    if new_secret:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def key_revoke(request, key_id: int):
    key = api_keys.apikey_revoke(membership=request_membership(request), key_id=key_id)
    messages.success(request, f"Key {key.name} revoked. Requests made with it now get 401.")
    return redirect("teams:keys")


@login_required
@require_POST
def webhook_secret_rotate(request):
    membership = request_membership(request)
    teams.team_rotate_webhook_secret(membership=membership)
    messages.success(request, "Webhook signing secret rotated: update your receivers.")
    return redirect("teams:keys")
