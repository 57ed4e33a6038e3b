"""REST API authentication by API key: `Authorization: Bearer fc_...`."""

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions, permissions

from .api_keys import InvalidApiKey, apikey_authenticate
from .selectors import request_actor


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header:
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not raw_key.strip():
            raise exceptions.AuthenticationFailed("Use the header `Authorization: Bearer <your API key>`.")
        try:
            key = apikey_authenticate(raw_key.strip())
        except InvalidApiKey as error:
            raise exceptions.AuthenticationFailed(str(error)) from None
        # The key acts for its team; the user who made it is recorded for audit (and may
        # since have been deleted: the key is the team's, not theirs).
        return key.created_by or AnonymousUser(), key

    def authenticate_header(self, request):
        return self.keyword


class IsTeamActor(permissions.BasePermission):
    """Authenticated as a team: an API key, or a signed-in member. Role checks happen in each
    view through accounts.permissions.require, so that messages name the missing right."""

    def has_permission(self, request, view):
        if request_actor(request) is None:
            raise exceptions.NotAuthenticated("Authenticate with `Authorization: Bearer <your API key>`.")
        return True
