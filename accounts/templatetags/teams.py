from django import template

from accounts.selectors import request_membership, teams_for_user

register = template.Library()


@register.simple_tag
def user_teams(request) -> dict:
    """The signed-in user's teams and the active one, for the switcher in the top bar."""
    membership = request_membership(request)
    return {"teams": list(teams_for_user(request.user)), "active": membership.team if membership else None}
