"""Account actions: each owns its whole side effect."""

from django.db import transaction

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
