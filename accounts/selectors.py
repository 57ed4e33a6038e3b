"""Which team a request acts as: one funnel for the HTML views and the websocket consumer."""

from .models import Team, User

ACTIVE_TEAM_SESSION_KEY = "active_team_id"


def active_team(user: User, session) -> Team | None:
    """The team the user is working in: the one chosen in the session if they still belong
    to it, otherwise their personal team. None for anonymous users."""
    if not user.is_authenticated:
        return None
    teams = Team.objects.filter(memberships__user=user)
    chosen = session.get(ACTIVE_TEAM_SESSION_KEY) if session is not None else None
    if chosen is not None:
        team = teams.filter(pk=chosen).first()
        if team is not None:
            return team
    return teams.filter(personal_owner=user).first() or teams.order_by("pk").first()
