"""The Content-Security-Policy header (settings.CONTENT_SECURITY_POLICY) on every response,
in every mode, so a template with an inline script or style breaks in development and in
the browser tests, not first in production."""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy:
            response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
