"""Invitation pages: the invitee's accept page, and the admins' create and revoke actions
(posted from the team settings page, which they redirect back to)."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from .forms import InvitationForm
from .invitations import (
    InvitationRefused,
    invitation_accept,
    invitation_addresses,
    invitation_create,
    invitation_for_token,
    invitation_revoke,
)
from .selectors import ACTIVE_TEAM_SESSION_KEY, request_membership
from .team_views import error_text


@require_http_methods(["GET", "POST"])
def invitation_page(request, token: str):
    """GET shows who invites whom to what; POST (signed in as the invited address) joins."""
    user = request.user if request.user.is_authenticated else None
    if request.method == "POST" and user is None:
        return redirect_to_login(request.get_full_path())
    try:
        if request.method == "POST":
            membership = invitation_accept(token=token, user=user)
        else:
            invitation = invitation_for_token(token, user=user)
    except InvitationRefused as refusal:
        return render(request, "accounts/invitation.html", {"refusal": refusal.message}, status=refusal.status)
    if request.method == "POST":
        request.session[ACTIVE_TEAM_SESSION_KEY] = membership.team_id
        messages.success(request, f"You joined {membership.team.name} as {membership.get_role_display().lower()}.")
        return redirect("generation:studio")
    come_back = {"next": request.get_full_path()}
    # Signed out, the page (and the sign-up form it links to) shows no full address.
    inviter, invitee = invitation_addresses(invitation, viewer=user)
    context = {
        "invitation": invitation,
        "inviter": inviter,
        "invitee": invitee,
        "login_url": f"{reverse('accounts:login')}?{urlencode(come_back)}",
        "signup_url": f"{reverse('accounts:signup')}?{urlencode(come_back)}",
    }
    return render(request, "accounts/invitation.html", context)


@login_required
@require_POST
def create(request):
    membership = request_membership(request)
    if membership is None:
        raise PermissionDenied("Choose a team to invite people to.")
    form = InvitationForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{form.fields[field].label or field.title()}: {' '.join(errors)}")
        return redirect("teams:settings")
    try:
        invitation = invitation_create(
            team=membership.team,
            invited_by_membership=membership,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            base_url=request.build_absolute_uri("/"),
        )
    except ValidationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(request, f"Invitation sent to {invitation.email}.")
    return redirect("teams:settings")


@login_required
@require_POST
def revoke(request, invitation_id: int):
    try:
        invitation = invitation_revoke(membership=request_membership(request), invitation_id=invitation_id)
    except ValidationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(request, f"The invitation for {invitation.email} is withdrawn.")
    return redirect("teams:settings")
