"""Account actions: each owns its whole side effect."""

from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction

from .hygiene import email_verification_send, signup_attempt_notify
from .models import Membership, User
from .teams import team_create


def _personal_team_name(user: User) -> str:
    return f"{user.email.split('@')[0]}'s team"[:100]


@transaction.atomic
def user_signup(*, email: str, password: str) -> User:
    """Create a user and the personal team that their jobs belong to."""
    user = User.objects.create_user(email=email, password=password)
    team_create(user=user, name=_personal_team_name(user), personal=True)
    return user


def signup_request(*, email: str, password: str, base_url: str) -> None:
    """Sign up the way Django's password reset answers: the same for a new and a taken
    address, and only the mail to that address says which. New: the account, its personal
    team and the verification mail. Taken: its owner is told that someone tried; nothing
    else changes (no second account, the password stays)."""
    owner = User.objects.filter(email__iexact=email).first()
    if owner is None:
        try:
            user = user_signup(email=email, password=password)
        except IntegrityError:  # the same address signed up meanwhile
            owner = User.objects.get(email__iexact=email)
        else:
            email_verification_send(user=user, base_url=base_url)
            return
    make_password(password)  # the hashing a new account costs, so the answer's delay says nothing either
    signup_attempt_notify(user=owner, base_url=base_url)


@transaction.atomic
def personal_team_ensure(*, user: User) -> Membership:
    """The membership of a user who belongs to no team in a personal team made now: users
    made by `createsuperuser` or in the admin skip sign-up, and every page acts as a team."""
    # Locking the user makes two first requests at once create one team, not two.
    User.objects.select_for_update().filter(pk=user.pk).first()
    membership = Membership.objects.filter(user=user).select_related("team").order_by("pk").first()
    if membership is None:
        team_create(user=user, name=_personal_team_name(user), personal=True)
        membership = Membership.objects.select_related("team").get(user=user)
    return membership
