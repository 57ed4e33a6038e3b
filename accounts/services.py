"""Account actions: each owns its whole side effect."""

from django.db import transaction

from .models import User
from .teams import team_create


@transaction.atomic
def user_signup(*, email: str, password: str) -> User:
    """Create a user and the personal team that their jobs belong to."""
    user = User.objects.create_user(email=email, password=password)
    team_create(user=user, name=f"{user.email.split('@')[0]}'s team"[:100], personal=True)
    return user
