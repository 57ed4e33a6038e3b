"""Account actions: each owns its whole side effect."""

from django.db import transaction

from .models import Membership, Team, User


@transaction.atomic
def user_signup(*, email: str, password: str) -> User:
    """Create a user and the personal team that their jobs belong to."""
    user = User.objects.create_user(email=email, password=password)
    team = Team.objects.create(name=f"{user.email.split('@')[0]}'s team", personal_owner=user)
    Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)
    return user
