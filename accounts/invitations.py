"""Team invitations: create (and mail), accept, revoke.

The mailed link carries a signed token of the invitation's id; whether it still works
(pending, for this address, not yet used) is decided by the row, so revoking needs no
token blacklist. Each refusal says what went wrong in words the invitee can act on.
"""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core.errors import Refusal

from .models import Invitation, Membership, Team, User
from .permissions import Perm, require, roles_assignable_by

TOKEN_SALT = "accounts.invitation"


class InvitationRefused(Refusal):
    """An invitation link that cannot be accepted; `message` is for the invitee, `status`
    the HTTP status that fits."""


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps(invitation.pk, salt=TOKEN_SALT)


def invitation_url(invitation: Invitation, *, base_url: str) -> str:
    path = reverse("accounts:invitation", kwargs={"token": invitation_token(invitation)})
    return base_url.rstrip("/") + path


def pending_invitations(team: Team):
    """The team's invitations that can still be accepted, newest first."""
    return team.invitations.filter(accepted_at=None, revoked_at=None, expires_at__gt=timezone.now())


def _normalized(email: str) -> str:
    return User.objects.normalize_email(email.strip()).lower()


def mask_email(email: str) -> str:
    """The address as b…@example.com: enough to recognise one's own, not to learn someone's."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}…@{domain}"


def invitation_addresses(invitation: Invitation, *, viewer: User | None) -> tuple[str, str]:
    """(inviter, invitee) as `viewer` may see them: in full only to the invitee signed in;
    to anyone else holding the link (a forwarded mail, a shared screen) masked."""
    show = str if viewer is not None and viewer.email.lower() == invitation.email.lower() else mask_email
    inviter = show(invitation.invited_by.email) if invitation.invited_by else ""
    return inviter, show(invitation.email)


def _send_invitation_mail(invitation: Invitation, *, base_url: str) -> None:
    context = {"invitation": invitation, "url": invitation_url(invitation, base_url=base_url)}
    send_mail(
        subject=f"You're invited to join {invitation.team.name} on Framecast",
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


@transaction.atomic
def invitation_create(
    *, team: Team, invited_by_membership: Membership, email: str, role: str, base_url: str
) -> Invitation:
    """Invite `email` to `team` as `role` and mail them the link (after commit).
    `base_url` is the scheme and host the link starts with, e.g. `request.build_absolute_uri("/")`."""
    require(invited_by_membership, Perm.MANAGE_MEMBERS)
    if invited_by_membership.team_id != team.pk:
        raise PermissionDenied("You can only invite people to a team you manage.")
    if role not in roles_assignable_by(invited_by_membership):
        label = dict(Membership.Role.choices).get(role, role).lower()
        yours = invited_by_membership.get_role_display().lower()
        raise PermissionDenied(f"Your role ({yours}) may not invite someone as {label}.")
    if team.personal_owner_id is not None:
        raise ValidationError("A personal team cannot be shared: create a team to invite people.")
    # Lock the team so that two admins inviting the same address at once make one invitation.
    team = Team.objects.select_for_update().get(pk=team.pk)
    email = _normalized(email)
    if team.memberships.filter(user__email__iexact=email).exists():
        raise ValidationError({"email": f"{email} is already a member of {team.name}."})
    if pending_invitations(team).filter(email__iexact=email).exists():
        raise ValidationError({"email": f"{email} already has a pending invitation; revoke it to send a new one."})
    invitation = Invitation.objects.create(
        team=team,
        email=email,
        role=role,
        invited_by=invited_by_membership.user,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    transaction.on_commit(lambda: _send_invitation_mail(invitation, base_url=base_url))
    return invitation


def _invitation_from_token(token: str, *, for_update: bool = False) -> Invitation:
    try:
        invitation_id = signing.loads(token, salt=TOKEN_SALT)
        invitations = Invitation.objects.select_related("team", "invited_by")
        if for_update:
            invitations = invitations.select_for_update(of=("self",))
        return invitations.get(pk=invitation_id)
    except (signing.BadSignature, Invitation.DoesNotExist):
        message = "This invitation link is not valid. Check that you copied all of it."
        raise InvitationRefused(message, status=404) from None


def _refuse_unless_acceptable(invitation: Invitation, user: User | None) -> None:
    if invitation.revoked_at is not None:
        raise InvitationRefused("This invitation was withdrawn by the team. Ask them for a new one.", status=410)
    if invitation.accepted_at is not None:
        raise InvitationRefused("This invitation was already used; each invitation works once.", status=410)
    if invitation.expires_at <= timezone.now():
        expired = timezone.localtime(invitation.expires_at)
        raise InvitationRefused(
            f"This invitation expired on {expired:%d %B %Y at %H:%M %Z}. "
            f"Ask {invitation_addresses(invitation, viewer=user)[0] or 'the team'} for a new one.",
            status=410,
        )
    if user is None:
        return
    if user.email.lower() != invitation.email.lower():
        raise InvitationRefused(
            f"This invitation is for {mask_email(invitation.email)}, but you are signed in as {user.email}. "
            "Log out and sign in with the invited address.",
            status=403,
        )
    if invitation.team.memberships.filter(user=user).exists():
        raise InvitationRefused(f"You are already a member of {invitation.team.name}.", status=400)


def invitation_for_token(token: str, *, user: User | None = None) -> Invitation:
    """The invitation behind `token` if it can be accepted (by `user`, when given), else
    InvitationRefused saying why."""
    invitation = _invitation_from_token(token)
    _refuse_unless_acceptable(invitation, user)
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """Join the invitation's team with its role; the invitation is used up."""
    # Lock the row before checking it: of two concurrent accepts the second waits, then
    # finds the invitation used.
    invitation = _invitation_from_token(token, for_update=True)
    _refuse_unless_acceptable(invitation, user)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    try:
        with transaction.atomic():
            return Membership.objects.create(team=invitation.team, user=user, role=invitation.role)
    except IntegrityError:
        # Joined meanwhile through another invitation; the outer rollback un-uses this one.
        raise InvitationRefused(f"You are already a member of {invitation.team.name}.", status=400) from None


def invitation_revoke(*, membership: Membership, invitation_id: int) -> Invitation:
    """Withdraw a pending invitation of the membership's team; 404 for other teams' ids."""
    require(membership, Perm.MANAGE_MEMBERS)
    invitation = Invitation.objects.filter(pk=invitation_id, team_id=membership.team_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    if invitation.accepted_at is not None:
        raise ValidationError(f"{invitation.email} already accepted this invitation; remove the member instead.")
    Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(revoked_at=timezone.now())
    invitation.refresh_from_db()
    if invitation.accepted_at is not None:
        raise ValidationError(f"{invitation.email} accepted this invitation just now; remove the member instead.")
    return invitation
